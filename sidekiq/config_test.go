package sidekiq_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

// TestConfigValidate: a bad Config is reported before Start, with the same error Start
// gives.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  *sidekiq.Config
		want string // a part of the error; "" for valid
	}{
		{"nil", nil, ""},
		{"weighted", &sidekiq.Config{Queues: []string{"a,3", "b"}}, ""},
		{"ranked negative", &sidekiq.Config{Queues: []string{"a,-5000"}, QueueMode: sidekiq.QueueModeRanked}, ""},
		{"weight zero", &sidekiq.Config{Queues: []string{"a,0"}}, "weighted mode needs weights > 0"},
		{"weight not a number", &sidekiq.Config{Queues: []string{"a,x"}}, "weight is not an integer"},
		{"empty name", &sidekiq.Config{Queues: []string{" ,2"}}, "empty name"},
		{"limit unknown queue", &sidekiq.Config{QueueLimits: map[string]int{"b": 1}}, "not in Queues"},
		{"limit zero", &sidekiq.Config{QueueLimits: map[string]int{"default": 0}}, "must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.want)
			}
			rdb, _ := testutil.NewEmbeddedRedis(t)
			if serr := sidekiq.NewServer(rdb, tt.cfg).Start(context.Background()); serr == nil || serr.Error() != err.Error() {
				t.Fatalf("Start = %v, want Validate's %v", serr, err)
			}
		})
	}
}
