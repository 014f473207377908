package sidekiq

import (
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestIsHashTag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ns   string
		want bool
	}{
		{"{ferry}", true},
		{"app{ferry}", true},
		{"{ferry}:app", true},
		{"}{ferry}x{", true}, // Redis takes the first '{' and the first '}' after it
		{"{f}", true},
		{"", false},
		{"ferry", false},
		{"{}", false},
		{"{}ferry{x}", false}, // the first tag is empty: Redis hashes the whole key
		{"{ferry", false},     // the tag would close in the rest of each key
		{"ferry}", false},
		{"x{", false},
	}
	for _, tt := range tests {
		if got := isHashTag(tt.ns); got != tt.want {
			t.Errorf("isHashTag(%q) = %v, want %v", tt.ns, got, tt.want)
		}
	}
}

func TestCheckClusterByClientKind(t *testing.T) {
	t.Parallel()
	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	defer cluster.Close()
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1", "b": "127.0.0.1:2"}})
	defer ring.Close()
	single := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer single.Close()
	tests := []struct {
		name    string
		rdb     redis.UniversalClient
		ns      string
		refused bool
	}{
		{"cluster without namespace", cluster, "", true},
		{"cluster with a plain namespace", cluster, "myapp", true},
		{"cluster with a hash tag", cluster, "{myapp}", false},
		{"ring without namespace", ring, "", true},
		{"ring with a hash tag", ring, "{myapp}", false},
		{"single server without namespace", single, "", false},
		{"single server with a plain namespace", single, "myapp", false},
	}
	for _, tt := range tests {
		err := checkCluster(tt.rdb, tt.ns)
		if refused := errors.Is(err, ErrClusterNamespace); refused != tt.refused || (err != nil && !refused) {
			t.Errorf("%s: checkCluster = %v, want refused %v", tt.name, err, tt.refused)
		}
	}
}
