package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryhq/ferry/promferry"
)

// TestDashboardUsesServedMetrics: every metric the Grafana dashboard queries is one the
// sidecar serves, so a renamed metric cannot leave a panel silently empty; and the file
// is a dashboard Grafana can import (panels with queries, a data source variable).
func TestDashboardUsesServedMetrics(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title      string `json:"title"`
		UID        string `json:"uid"`
		Templating struct {
			List []struct {
				Name string `json:"name"`
				Type string `json:"type"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Templating.List) == 0 || dash.Templating.List[0].Type != "datasource" {
		t.Errorf("dashboard header: title %q uid %q variables %+v", dash.Title, dash.UID, dash.Templating.List)
	}

	served := map[string]bool{}
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		promferry.New(nil).Describe(ch)
		promferry.NewStatsCollector(nil, nil).Describe(ch)
		close(ch)
	}()
	fq := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	for d := range ch {
		if m := fq.FindStringSubmatch(d.String()); m != nil {
			served[m[1]] = true
		}
	}
	name := regexp.MustCompile(`ferry_[a-z_]+`)
	used := map[string]bool{}
	queries := 0
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			queries++
			for _, n := range name.FindAllString(tg.Expr, -1) {
				base := n
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if s, ok := strings.CutSuffix(n, suffix); ok && served[s] {
						base = s
					}
				}
				if !served[base] {
					t.Errorf("panel %q queries %s, which is not served", p.Title, n)
				}
				used[base] = true
			}
		}
	}
	for n := range served {
		if !used[n] {
			t.Errorf("served metric %s has no panel", n)
		}
	}
	if queries < 15 {
		t.Errorf("only %d queries", queries)
	}
}
