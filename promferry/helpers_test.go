package promferry_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// samples gathers reg into a map from `name{k="v",...}` (labels sorted, const labels
// included) to value; a histogram gives name_count and name_sum entries.
func samples(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			slices.Sort(labels)
			key := func(suffix string) string {
				return mf.GetName() + suffix + "{" + strings.Join(labels, ",") + "}"
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[key("")] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key("")] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key("_count")] = float64(m.GetHistogram().GetSampleCount())
				out[key("_sum")] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

// series returns the keys of s whose metric name is name.
func series(s map[string]float64, name string) []string {
	var out []string
	for k := range s {
		if strings.HasPrefix(k, name+"{") {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// qc is the label part of a (queue, class) series key.
func qc(queue, class string) string {
	return fmt.Sprintf("{class=%q,queue=%q}", class, queue)
}

// labels renders label pairs for examples, queue first.
func labels(lps []*dto.LabelPair) string {
	var q, rest []string
	for _, lp := range lps {
		s := lp.GetName() + "=" + lp.GetValue()
		if lp.GetName() == "queue" {
			q = append(q, s)
		} else {
			rest = append(rest, s)
		}
	}
	return strings.Join(append(q, rest...), " ")
}
