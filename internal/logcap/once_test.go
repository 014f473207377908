package logcap

import (
	"strconv"
	"sync"
	"testing"
)

func TestOnceFirstPerReason(t *testing.T) {
	t.Parallel()
	var o Once
	if !o.First("a") {
		t.Fatal("first a: want true")
	}
	if o.First("a") {
		t.Fatal("second a: want false")
	}
	if !o.First("b") {
		t.Fatal("first b: want true")
	}
}

func TestOnceCapsReasons(t *testing.T) {
	t.Parallel()
	var o Once
	firsts := 0
	for i := range 10 * MaxReasons {
		if o.First("reason " + strconv.Itoa(i)) {
			firsts++
		}
	}
	if firsts != MaxReasons {
		t.Fatalf("%d reasons let through, want MaxReasons (%d)", firsts, MaxReasons)
	}
	if len(o.seen) != MaxReasons {
		t.Fatalf("%d reasons remembered, want %d", len(o.seen), MaxReasons)
	}
}

func TestOnceConcurrent(t *testing.T) {
	t.Parallel()
	var o Once
	var wg sync.WaitGroup
	var mu sync.Mutex
	firsts := 0
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if o.First("same") {
					mu.Lock()
					firsts++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if firsts != 1 {
		t.Fatalf("%d goroutines saw the reason first, want 1", firsts)
	}
}
