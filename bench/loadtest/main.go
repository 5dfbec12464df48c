// Command loadtest measures tokengate against Caddy's own handlers in one Caddy process, so the
// figures are ratios that mean something on a shared machine: each pair runs A, B, A, B for the
// same seconds and the rates are averaged.
//
//	go run ./bench/loadtest -caddy bin/caddy -duration 5s
//
// It is a benchmark, not a test: it prints figures and the goals beside them, and fails only when
// something does not work at all.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokengate/tokengate/bench/internal/caddyproc"
	"golang.org/x/crypto/bcrypt"
)

func main() {
	caddyBin := flag.String("caddy", "bin/caddy", "the Caddy binary built with tokengate")
	duration := flag.Duration("duration", 5*time.Second, "how long each run of a scenario lasts")
	workers := flag.Int("workers", 32, "concurrent connections")
	only := flag.String("only", "", "run just this scenario (respond proxy gate cc refresh malformed) and print its rate, e.g. to profile Caddy through its admin endpoint meanwhile")
	storeBackend := flag.String("store", "pebble", "where Caddy keeps its state: pebble (the default store), bolt, or memory, which writes nothing durably and so bounds what a durable store could reach")
	flag.Parse()
	if *storeBackend != "bolt" && *storeBackend != "pebble" && *storeBackend != "memory" {
		log.Fatalf("-store %q: want pebble, bolt or memory", *storeBackend)
	}
	if err := run(*caddyBin, *duration, *workers, *only, *storeBackend); err != nil {
		log.Fatal(err)
	}
}

// storeDirective is the arguments of the store directive for backend, its files under dir.
func storeDirective(backend, dir string) string {
	if backend == "memory" {
		return backend
	}
	return backend + " " + dir + "/" + backend
}

// scenario is one kind of request, repeated by every worker.
type scenario struct {
	name string
	// setup prepares a worker's state (a refresh token); nil when none is needed.
	setup func(c *http.Client) (any, error)
	// once sends one request and reports whether it got the answer it should.
	once func(c *http.Client, state any) (any, error)
}

// pair is one ratio: numerator over denominator, with the goal the issue sets.
type pair struct {
	num, den string
	label    string
	goal     float64
}

func run(caddyBin string, duration time.Duration, workers int, only, storeBackend string) error {
	dir, err := os.MkdirTemp("", "tokengate-loadtest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	front, upstream, admin := caddyproc.FreePort(), caddyproc.FreePort(), caddyproc.FreePort()
	base := fmt.Sprintf("http://127.0.0.1:%d", front)

	secretHash, err := bcrypt.GenerateFromPassword([]byte("bench-secret"), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	passwordHash, err := bcrypt.GenerateFromPassword([]byte("bench-password"), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	caddyfile := fmt.Sprintf(`{
	admin 127.0.0.1:%[3]d
	auto_https off
	storage file_system %[5]s/caddy
	tokengate {
		issuer %[4]s
		store %[8]s
		code_ttl 10m
		client bench {
			secret %[6]s
			grants client_credentials password refresh_token authorization_code
			scopes api offline_access
			audience api
			redirect_uris https://bench.example/cb
		}
		users main {
			user bench %[7]s
		}
	}
}

http://127.0.0.1:%[1]d {
	tokengate
	respond /respond "ok"
	reverse_proxy /proxy/* 127.0.0.1:%[2]d
	route /gated/* {
		bearer_auth {
			audience api
		}
		reverse_proxy 127.0.0.1:%[2]d
	}
}

http://127.0.0.1:%[2]d {
	respond "upstream"
}
`, front, upstream, admin, base, dir, secretHash, passwordHash, storeDirective(storeBackend, dir))
	caddy, err := caddyproc.Start(caddyBin, dir, caddyfile, base+"/respond")
	if err != nil {
		return err
	}
	defer caddy.Stop()

	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("bench:bench-secret"))
	client := newClient(workers)
	token, err := tokenRequest(client, base, basic, url.Values{"grant_type": {"client_credentials"}})
	if err != nil {
		return fmt.Errorf("first token: %w", err)
	}
	bearer := "Bearer " + token.AccessToken

	scenarios := map[string]scenario{
		"respond": {name: "respond", once: expectGET(base+"/respond", "", http.StatusOK)},
		// The plain proxy is sent the very request the gate is, token included, so that the ratio
		// measures what bearer_auth does, not the bytes of a token on the wire (a proxied API is
		// sent its callers' credentials either way). Measured apart (-only, 8 s each, twice):
		// proxy 9.4-9.6k/s without the header, 8.6k/s with it; gate+proxy 8.6-8.8k/s.
		"proxy":     {name: "reverse_proxy", once: expectGET(base+"/proxy/x", bearer, http.StatusOK)},
		"gate":      {name: "bearer_auth+reverse_proxy", once: expectGET(base+"/gated/x", bearer, http.StatusOK)},
		"malformed": {name: "malformed token 401", once: expectGET(base+"/gated/x", "Bearer not.a.token", http.StatusUnauthorized)},
		"cc": {name: "client_credentials", once: func(c *http.Client, _ any) (any, error) {
			_, err := tokenRequest(c, base, basic, url.Values{"grant_type": {"client_credentials"}})
			return nil, err
		}},
		"refresh": {
			name: "refresh",
			setup: func(c *http.Client) (any, error) {
				t, err := tokenRequest(c, base, basic, url.Values{"grant_type": {"password"}, "username": {"bench"},
					"password": {"bench-password"}, "scope": {"api offline_access"}})
				return t.RefreshToken, err
			},
			once: func(c *http.Client, state any) (any, error) {
				t, err := tokenRequest(c, base, basic, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {state.(string)}})
				if err == nil && t.RefreshToken == "" {
					err = errors.New("no refresh token came back")
				}
				return t.RefreshToken, err
			},
		},
	}
	codes := &codePool{base: base}
	scenarios["exchange"] = scenario{
		name: "code exchange (authorize done ahead)",
		once: func(c *http.Client, _ any) (any, error) {
			code, err := codes.take()
			if err != nil {
				return nil, err
			}
			_, err = tokenRequest(c, base, basic, url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {benchRedirect}})
			return nil, err
		},
	}
	if only != "" {
		s, ok := scenarios[only]
		if !ok {
			return fmt.Errorf("no scenario %q", only)
		}
		if only == "exchange" {
			if err := codes.fill(workers, 20000); err != nil {
				return err
			}
		}
		fmt.Printf("admin endpoint http://127.0.0.1:%d\n", admin)
		m, err := measure(caddy, client, s, workers, duration)
		if err != nil {
			return err
		}
		fmt.Printf("%s=%.0f/s cpu=%.0fus/req\n", only, m.rate, m.cpuPerRequest.Seconds()*1e6)
		return nil
	}
	pairs := []pair{
		{"cc", "respond", "client_credentials/respond", 0.40},
		{"gate", "proxy", "gate+proxy/proxy", 0.97},
		{"refresh", "cc", "refresh/client_credentials", 0.8},
		{"malformed", "respond", "malformed401/respond", 0.9},
	}
	rates := map[string][]float64{}
	cpu := map[string][]float64{}
	note := func(key string, m measured) {
		rates[key] = append(rates[key], m.rate)
		cpu[key] = append(cpu[key], m.cpuPerRequest.Seconds()*1e6)
	}
	for _, p := range pairs {
		for round := 0; round < 2; round++ {
			for _, key := range []string{p.num, p.den} {
				m, err := measure(caddy, client, scenarios[key], workers, duration)
				if err != nil {
					return fmt.Errorf("%s: %w", scenarios[key].name, err)
				}
				note(key, m)
			}
		}
	}
	// The code exchange has no goal: it is reported beside the others, with codes issued ahead
	// (a signed-in session's authorize requests) for as many exchanges as client_credentials made.
	for range 2 {
		need := int(mean0(rates["cc"])*duration.Seconds()*1.5) + workers
		if err := codes.fill(workers, need); err != nil {
			return err
		}
		m, err := measure(caddy, client, scenarios["exchange"], workers, duration)
		if err != nil {
			return fmt.Errorf("%s: %w", scenarios["exchange"].name, err)
		}
		note("exchange", m)
	}
	mean := func(key string) float64 { return mean0(rates[key]) }
	var line []string
	for _, key := range []string{"respond", "proxy", "gate", "cc", "refresh", "exchange", "malformed"} {
		line = append(line, fmt.Sprintf("%s=%.0f/s", key, mean(key)))
	}
	for _, p := range pairs {
		line = append(line, fmt.Sprintf("%s=%.2f(goal>=%.2f)", p.label, mean(p.num)/mean(p.den), p.goal))
	}
	fmt.Println(strings.Join(line, " "))
	// What Caddy spent per request (its CPU time over the requests of a run, its idle work
	// included): a second reading of the same runs, steadier than the rates when other work
	// shares the machine.
	line = line[:0]
	for _, key := range []string{"respond", "proxy", "gate", "cc", "refresh", "exchange", "malformed"} {
		line = append(line, fmt.Sprintf("%s=%.0fus", key, mean0(cpu[key])))
	}
	fmt.Println("cpu/request: " + strings.Join(line, " "))
	return nil
}

// mean0 is the mean of rates, 0 for none.
func mean0(rates []float64) float64 {
	sum := 0.0
	for _, r := range rates {
		sum += r
	}
	return sum / float64(max(len(rates), 1))
}

// benchRedirect is the bench client's registered redirect URI; nothing listens there, the codes
// are read from the Location header.
const benchRedirect = "https://bench.example/cb"

// codePool holds authorization codes issued ahead, so the exchange is measured alone.
type codePool struct {
	base  string
	mu    sync.Mutex
	codes []string
}

func (p *codePool) take() (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.codes) == 0 {
		return "", errors.New("ran out of authorization codes issued ahead")
	}
	code := p.codes[len(p.codes)-1]
	p.codes = p.codes[:len(p.codes)-1]
	return code, nil
}

// fill signs in once through the login page, then has the signed-in session authorize until the
// pool holds n codes, with workers requests at a time.
func (p *codePool) fill(workers, n int) error {
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	authorize := p.base + "/connect/authorize?" + url.Values{"client_id": {"bench"}, "redirect_uri": {benchRedirect},
		"response_type": {"code"}, "scope": {"api"}, "state": {"bench"}}.Encode()
	resp, err := browser.Get(authorize)
	if err != nil {
		return err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	form := url.Values{"username": {"bench"}, "password": {"bench-password"}}
	for _, m := range hiddenField.FindAllStringSubmatch(string(page), -1) {
		form.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	if _, err := p.codeFrom(browser.PostForm(p.base+"/connect/authorize", form)); err != nil {
		return fmt.Errorf("signing in for codes: %w", err)
	}
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	var issued atomic.Int64
	for range workers {
		wg.Go(func() {
			for issued.Add(1) <= int64(n) {
				code, err := p.codeFrom(browser.Get(authorize))
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				p.mu.Lock()
				p.codes = append(p.codes, code)
				p.mu.Unlock()
			}
		})
	}
	wg.Wait()
	return firstErr
}

var hiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)"`)

// codeFrom reads the code from an authorization response's redirect.
func (p *codePool) codeFrom(resp *http.Response, err error) (string, error) {
	if err != nil {
		return "", err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	location, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound || location.Query().Get("code") == "" {
		return "", fmt.Errorf("authorize answered %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return location.Query().Get("code"), nil
}

// measured is one run of a scenario: its rate, and the CPU Caddy spent per request meanwhile.
type measured struct {
	rate          float64
	cpuPerRequest time.Duration
}

// measure runs s on every worker for d and returns successful requests per second. Any failed
// request ends the run with an error: a rate of wrong answers measures nothing.
func measure(caddy *caddyproc.Caddy, client *http.Client, s scenario, workers int, d time.Duration) (measured, error) {
	states := make([]any, workers)
	if s.setup != nil {
		for i := range states {
			st, err := s.setup(client)
			if err != nil {
				return measured{}, fmt.Errorf("setup: %w", err)
			}
			states[i] = st
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var done atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	cpuBefore, err := caddy.CPU()
	if err != nil {
		return measured{}, err
	}
	start := time.Now()
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func(state any) {
			defer wg.Done()
			for ctx.Err() == nil {
				next, err := s.once(client, state)
				if err != nil {
					if ctx.Err() == nil {
						once.Do(func() { firstErr = err; cancel() })
					}
					return
				}
				state = next
				done.Add(1)
			}
		}(states[i])
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpuAfter, err := caddy.CPU()
	if err != nil {
		return measured{}, err
	}
	if firstErr != nil {
		return measured{}, firstErr
	}
	n := max(done.Load(), 1)
	return measured{rate: float64(n) / elapsed.Seconds(), cpuPerRequest: (cpuAfter - cpuBefore) / time.Duration(n)}, nil
}

func expectGET(target, authorization string, status int) func(*http.Client, any) (any, error) {
	return func(c *http.Client, state any) (any, error) {
		req, _ := http.NewRequest(http.MethodGet, target, nil)
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := c.Do(req)
		if err != nil {
			return state, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != status {
			return state, fmt.Errorf("GET %s: status %d, want %d", target, resp.StatusCode, status)
		}
		return state, nil
	}
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

func tokenRequest(c *http.Client, base, basic string, form url.Values) (tokenResponse, error) {
	var t tokenResponse
	req, _ := http.NewRequest(http.MethodPost, base+"/connect/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", basic)
	resp, err := c.Do(req)
	if err != nil {
		return t, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return t, fmt.Errorf("token endpoint: %d %s", resp.StatusCode, body)
	}
	return t, json.Unmarshal(body, &t)
}

func newClient(workers int) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        workers * 2,
			MaxIdleConnsPerHost: workers * 2,
			IdleConnTimeout:     time.Minute,
		},
	}
}
