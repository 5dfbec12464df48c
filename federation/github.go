package federation

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// GitHubURL is github.com, the default of GitHub's base URL.
const GitHubURL = "https://github.com"

// GitHub fills in cfg for GitHub, or for the GitHub Enterprise Server at baseURL: its OAuth
// endpoints, /user as the userinfo (its numeric id the subject: a login can be renamed and
// reused), and the claims GitHub spells its own way. cfg.Kind becomes KindOAuth2.
func GitHub(cfg Config, baseURL string) Config {
	base := strings.TrimSuffix(baseURL, "/")
	if base == "" {
		base = GitHubURL
	}
	api := base + "/api/v3"
	if base == GitHubURL {
		api = "https://api.github.com"
	}
	cfg.Kind = KindOAuth2
	cfg.AuthorizeURL = base + "/login/oauth/authorize"
	cfg.TokenURL = base + "/login/oauth/access_token"
	cfg.UserinfoURL = api + "/user"
	cfg.SubjectField = "id"
	if cfg.DisplayName == "" {
		cfg.DisplayName = "GitHub"
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"read:user", "user:email"}
	}
	cfg.EnrichProfile = func(ctx context.Context, client *http.Client, profile map[string]any) error {
		return gitHubProfile(ctx, client, api, profile)
	}
	return cfg
}

// gitHubProfile maps /user's members to the standard claims: preferred_username from login, name
// from name (else login), email from /user's public address, else the primary verified one of
// /user/emails.
func gitHubProfile(ctx context.Context, client *http.Client, api string, profile map[string]any) error {
	login, _ := profile["login"].(string)
	profile["preferred_username"] = login
	if name, _ := profile["name"].(string); name == "" {
		profile["name"] = login
	}
	if email, _ := profile["email"].(string); email != "" {
		return nil
	}
	delete(profile, "email")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, api+"/user/emails", nil)
	if err != nil {
		return invalid("user/emails", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return unavailable("user/emails", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= http.StatusInternalServerError:
		return unavailable("user/emails", fmt.Errorf("%w %d", errUpstreamStatus, resp.StatusCode))
	case resp.StatusCode != http.StatusOK:
		// Without user:email granted there is no address; the person has none then.
		return nil
	}
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&emails); err != nil {
		return invalid("user/emails", err)
	}
	for _, e := range emails {
		if e.Primary && e.Verified {
			profile["email"] = e.Email
		}
	}
	return nil
}
