package metrics

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tokengate/tokengate/grants"
)

func TestRegisterIntoEveryRegistry(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := Register(reg); err != nil {
		t.Fatal(err)
	}
	// A second app in one configuration registers into the same registry.
	if err := Register(reg); err != nil {
		t.Errorf("registering twice: %v", err)
	}
	// A reload brings a fresh registry; the counts carry over.
	refreshReuse.WithLabelValues("carried").Inc()
	next := prometheus.NewPedanticRegistry()
	if err := Register(next); err != nil {
		t.Fatal(err)
	}
	families, err := next.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range families {
		if mf.GetName() == "tokengate_refresh_reuse_total" {
			for _, m := range mf.Metric {
				found = found || (m.GetLabel()[0].GetValue() == "carried" && m.GetCounter().GetValue() >= 1)
			}
		}
	}
	if !found {
		t.Error("the fresh registry does not serve the count made before it")
	}
}

func TestTokenRequestLabels(t *testing.T) {
	app := &grants.Client{ID: "app", Grants: []string{"client_credentials"}}
	g := NewGrants([]*grants.Client{app})
	cases := []struct {
		ev                    grants.Event
		client, grant, result string
	}{
		{grants.Event{Kind: grants.EventTokenIssued, Client: app, GrantType: "client_credentials", Result: grants.ResultOK},
			"app", "client_credentials", "ok"},
		{grants.Event{Kind: grants.EventTokenRefused, Client: app, GrantType: grants.GrantUnsupported, Result: grants.CodeUnsupportedGrantType},
			"app", "unsupported", "unsupported_grant_type"},
		{grants.Event{Kind: grants.EventTokenRefused, GrantType: "client_credentials", Result: grants.CodeInvalidClient},
			"unknown", "client_credentials", "invalid_client"},
		{grants.Event{Kind: grants.EventTokenIssued, Client: &grants.Client{ID: "registered-at-runtime"}, GrantType: "client_credentials", Result: grants.ResultOK},
			"dynamic", "client_credentials", "ok"},
	}
	for _, c := range cases {
		counter := tokenRequests.WithLabelValues(c.client, c.grant, c.result)
		before := value(t, counter)
		c.ev.Duration = time.Millisecond
		g.Observe(c.ev)
		if got := value(t, counter) - before; got != 1 {
			t.Errorf("%+v: tokengate_token_requests_total{%s,%s,%s} grew by %v, want 1", c.ev, c.client, c.grant, c.result, got)
		}
	}
}

// TestTokenRequestAllocatesNothing: counting a configured client's request looks no label up.
func TestTokenRequestAllocatesNothing(t *testing.T) {
	app := &grants.Client{ID: "app", Grants: []string{"client_credentials"}}
	g := NewGrants([]*grants.Client{app})
	ev := grants.Event{Kind: grants.EventTokenIssued, Client: app, GrantType: "client_credentials", Result: grants.ResultOK, Duration: time.Millisecond}
	if allocs := testing.AllocsPerRun(100, func() { g.Observe(ev) }); allocs != 0 {
		t.Errorf("Observe allocates %v times per token request, want 0", allocs)
	}
	if allocs := testing.AllocsPerRun(100, func() { GateAllowed(); GateRefused("invalid_token") }); allocs != 0 {
		t.Errorf("counting gate decisions allocates %v times, want 0", allocs)
	}
}

func TestStoreResults(t *testing.T) {
	s := ForStore("test")
	s.Observe(time.Millisecond, false)
	s.Observe(time.Millisecond, true)
	s.Observe(time.Millisecond, true)
	if ok, fault := value(t, storeOperations.WithLabelValues("test", "ok")), value(t, storeOperations.WithLabelValues("test", "error")); ok != 1 || fault != 2 {
		t.Errorf("store operations ok %v error %v, want 1 and 2", ok, fault)
	}
}

// value reads counter's count.
func value(t *testing.T, counter prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := counter.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestREADMEQueries: every series the README's PromQL panels read is one tokengate exports, so a
// renamed metric cannot leave the documented dashboards silently empty.
func TestREADMEQueries(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```promql\n")
	queries, _, closed := strings.Cut(rest, "```")
	if !ok || !closed {
		t.Fatal("README.md has no promql block")
	}
	exported := map[string]bool{}
	descs := make(chan *prometheus.Desc, 64)
	for _, c := range collectors {
		c.Describe(descs)
	}
	close(descs)
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range descs {
		name := fqName.FindStringSubmatch(d.String())[1]
		// A histogram is read through its _bucket, _sum and _count series.
		for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
			exported[name+suffix] = true
		}
	}
	used := regexp.MustCompile(`tokengate_\w+`).FindAllString(queries, -1)
	if len(used) == 0 {
		t.Fatal("the README's promql block reads no tokengate series")
	}
	for _, name := range used {
		if !exported[name] {
			t.Errorf("README's PromQL reads %s, which tokengate does not export", name)
		}
	}
}
