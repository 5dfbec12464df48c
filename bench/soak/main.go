// Command soak keeps refresh tokens rotating through two Caddy instances on one Redis, as a
// deployment behind a load balancer runs them, and counts what a shared store must never do: lose
// a refresh token (a refresh that should have worked failed) or issue one twice.
//
//	go run ./bench/soak -caddy bin/caddy -duration 20s -clients 16
//
// Each client signs in once, then redeems its newest refresh token again and again, alternating
// between the instances. Then as many clients ask for client_credentials tokens for as long, in
// the same way, for a rate to set the refreshes against. It prints refreshes per second, p50 and
// p99 latency, the two counts, and the refresh rate over the client_credentials rate, and exits
// non-zero when either count is not zero.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokengate/tokengate/bench/internal/caddyproc"
	"golang.org/x/crypto/bcrypt"
)

func main() {
	caddyBin := flag.String("caddy", "bin/caddy", "the Caddy binary built with tokengate")
	redisBin := flag.String("redis-server", "redis-server", "the redis-server binary")
	duration := flag.Duration("duration", 20*time.Second, "how long the clients refresh")
	clients := flag.Int("clients", 16, "concurrent clients, each with its own refresh token")
	flag.Parse()
	r, err := run(*caddyBin, *redisBin, *duration, *clients)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r)
	if r.lost > 0 || r.doubled > 0 || r.errors > 0 {
		os.Exit(1)
	}
}

// result is what a soak measured.
type result struct {
	refreshes int
	elapsed   time.Duration
	// ccRate is the client_credentials tokens issued per second in the same run.
	ccRate    float64
	latencies []time.Duration // sorted
	lost      int             // refreshes that should have worked and failed
	doubled   int             // refresh tokens issued twice, or redeemed twice
	errors    int             // requests that got no answer
}

func (r *result) String() string {
	rate := float64(r.refreshes) / r.elapsed.Seconds()
	return fmt.Sprintf("refreshes=%d rate=%.0f/s p50=%v p99=%v lost=%d doubled=%d errors=%d client_credentials=%.0f/s refresh/client_credentials=%.2f",
		r.refreshes, rate, r.percentile(50), r.percentile(99), r.lost, r.doubled, r.errors, r.ccRate, rate/r.ccRate)
}

func (r *result) percentile(p int) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	return r.latencies[(len(r.latencies)-1)*p/100].Round(10 * time.Microsecond)
}

func run(caddyBin, redisBin string, duration time.Duration, clients int) (*result, error) {
	dir, err := os.MkdirTemp("", "tokengate-soak-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	stopRedis, redisURL, err := startRedis(redisBin, dir)
	if err != nil {
		return nil, err
	}
	defer stopRedis()
	passwordHash, err := bcrypt.GenerateFromPassword([]byte("soak-password"), bcrypt.MinCost)
	if err != nil {
		return nil, err
	}
	var bases []string
	for i := range 2 {
		base, stop, err := startCaddy(caddyBin, filepath.Join(dir, strconv.Itoa(i)), redisURL, passwordHash)
		if err != nil {
			return nil, err
		}
		defer stop()
		bases = append(bases, base)
	}

	s := &soak{bases: bases, http: &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: clients * 2},
	}, issued: map[string]bool{}}
	tokens := make([]string, clients)
	for i := range tokens {
		if tokens[i], err = s.signIn(bases[i%2]); err != nil {
			return nil, fmt.Errorf("client %d signing in: %w", i, err)
		}
		s.issued[tokens[i]] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range tokens {
		wg.Go(func() { tokens[i] = s.client(ctx, i, tokens[i]) })
	}
	wg.Wait()
	s.res.elapsed = time.Since(start)
	slices.Sort(s.res.latencies)

	// A client's newest token works once; then presenting it again must fail.
	for i, token := range tokens {
		if _, err := s.refresh(bases[i%2], token); err != nil {
			s.res.lost++
			log.Printf("client %d: its newest refresh token after the run: %v", i, err)
			continue
		}
		if _, err := s.refresh(bases[(i+1)%2], token); err == nil {
			s.res.doubled++
			log.Printf("client %d: a refresh token redeemed twice", i)
		}
	}
	if s.res.ccRate, err = s.clientCredentials(duration, clients); err != nil {
		return nil, err
	}
	return &s.res, nil
}

// clientCredentials has clients concurrent clients ask for client_credentials tokens for d,
// alternating instances, and returns the tokens issued per second.
func (s *soak) clientCredentials(d time.Duration, clients int) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var issued atomic.Int64
	errs := make([]error, clients)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			for n := i; ctx.Err() == nil; n++ {
				if _, err := s.grant(s.bases[n%len(s.bases)], url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}}); err != nil {
					errs[i] = fmt.Errorf("client_credentials: %w", err)
					return
				}
				issued.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(issued.Load()) / time.Since(start).Seconds(), errors.Join(errs...)
}

// soak is the clients' shared state.
type soak struct {
	bases []string
	http  *http.Client

	mu     sync.Mutex
	issued map[string]bool // every refresh token handed out
	res    result
}

// client refreshes token in a loop until ctx ends, alternating instances, and returns its newest
// token. After a lost or doubled token it signs in again, so one fault does not end the soak.
func (s *soak) client(ctx context.Context, i int, token string) string {
	for n := i; ctx.Err() == nil; n++ {
		base := s.bases[n%len(s.bases)]
		start := time.Now()
		next, err := s.refresh(base, token)
		took := time.Since(start)
		s.mu.Lock()
		var answered *tokenError
		switch {
		case err == nil && s.issued[next]:
			s.res.doubled++
			err = fmt.Errorf("refresh token %s issued twice", next)
		case err == nil:
			s.issued[next] = true
			s.res.refreshes++
			s.res.latencies = append(s.res.latencies, took)
			token = next
		case errors.As(err, &answered):
			s.res.lost++
		default:
			s.res.errors++
		}
		s.mu.Unlock()
		if err != nil {
			log.Printf("client %d at %s: %v", i, base, err)
			if token, err = s.signIn(base); err != nil {
				log.Printf("client %d signing in again: %v", i, err)
				return token
			}
		}
	}
	return token
}

// tokenError is an answer of the token endpoint other than 200.
type tokenError struct {
	status int
	body   string
}

func (e *tokenError) Error() string {
	return fmt.Sprintf("token endpoint: HTTP %d %s", e.status, e.body)
}

func (s *soak) signIn(base string) (string, error) {
	return s.token(base, url.Values{"grant_type": {"password"}, "username": {"soak"}, "password": {"soak-password"},
		"scope": {"api offline_access"}})
}

func (s *soak) refresh(base, token string) (string, error) {
	return s.token(base, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}})
}

// token asks base's token endpoint for a grant and returns the refresh token it issued.
func (s *soak) token(base string, form url.Values) (string, error) {
	t, err := s.grant(base, form)
	if err == nil && t.RefreshToken == "" {
		err = errors.New("token endpoint: no refresh token")
	}
	return t.RefreshToken, err
}

// tokens is a token endpoint's answer (RFC 6749 §5.1).
type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// grant asks base's token endpoint for a grant and returns what it issued.
func (s *soak) grant(base string, form url.Values) (tokens, error) {
	var t tokens
	req, err := http.NewRequest(http.MethodPost, base+"/connect/token", strings.NewReader(form.Encode()))
	if err != nil {
		return t, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("soak", "soak-secret")
	resp, err := s.http.Do(req)
	if err != nil {
		return t, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return t, err
	}
	if resp.StatusCode != http.StatusOK {
		return t, &tokenError{resp.StatusCode, string(body)}
	}
	if err := json.Unmarshal(body, &t); err != nil || t.AccessToken == "" {
		return t, fmt.Errorf("token endpoint: no access token in %s (%v)", body, err)
	}
	return t, nil
}

// startRedis runs a redis-server that keeps nothing on disk, on a free port.
func startRedis(bin, dir string) (stop func(), redisURL string, err error) {
	port := caddyproc.FreePort()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--logfile", "redis.log")
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("starting redis-server: %w", err)
	}
	stop = func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			conn.Close()
			return stop, fmt.Sprintf("redis://127.0.0.1:%d", port), nil
		}
	}
	stop()
	return nil, "", errors.New("redis-server did not listen within 10s")
}

// startCaddy runs one tokengate instance on Redis in dir and waits until it serves.
func startCaddy(bin, dir, redisURL string, passwordHash []byte) (base string, stop func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, err
	}
	port, admin := caddyproc.FreePort(), caddyproc.FreePort()
	base = fmt.Sprintf("http://127.0.0.1:%d", port)
	// Both instances have one issuer: tokens of either pass at the other.
	caddyfile := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	auto_https off
	storage file_system %s/caddy
	tokengate {
		issuer http://tokengate.soak
		store redis %s
		client soak {
			secret soak-secret
			grants password refresh_token client_credentials
			scopes api offline_access
			audience api
		}
		users main {
			user soak %s
		}
	}
}

%s {
	tokengate
}
`, admin, dir, redisURL, passwordHash, base)
	c, err := caddyproc.Start(bin, dir, caddyfile, base+"/.well-known/openid-configuration/jwks")
	if err != nil {
		return base, nil, err
	}
	return base, c.Stop, nil
}
