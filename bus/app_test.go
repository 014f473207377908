package bus_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/bus"
	"github.com/ferryhq/ferry/sidekiq"
	"github.com/ferryhq/ferry/testutil"
)

func TestRegisterReplacesAndUnregisterRemoves(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	ctx := context.Background()
	h := newRecorder().handler()

	old := bus.NewApp(rdb, "Billing-API", nil)
	if old.Key() != "billing_api" {
		t.Fatalf("key %q", old.Key())
	}
	old.Subscribe("a", h)
	old.Subscribe("b", h)
	if err := old.Register(ctx); err != nil {
		t.Fatal(err)
	}
	other := bus.NewApp(rdb, "other", nil)
	other.Subscribe("a", h)
	if err := other.Register(ctx); err != nil {
		t.Fatal(err)
	}

	newer := bus.NewApp(rdb, "billing_api", nil)
	newer.Subscribe("b", h)
	newer.SubscribeMatch("c", bus.Match{"x": bus.Present}, h, bus.Queue("Low Priority"))
	if err := newer.Register(ctx); err != nil {
		t.Fatal(err)
	}
	fields := rdb.HGetAll(ctx, "bus_app:billing_api").Val()
	if len(fields) != 2 || fields["a"] != "" {
		t.Fatalf("after re-registering: %v", fields)
	}
	if want := `{"queue_name":"billing_api_low_priority","key":"c","class":"::QueueBus::Rider","matcher":{"x":"bus_special_value_present"}}`; fields["c"] != want {
		t.Fatalf("c = %s\nwant %s", fields["c"], want)
	}
	if got := sorted(rdb.SMembers(ctx, "bus_apps").Val()); !reflect.DeepEqual(got, []string{"billing_api", "other"}) {
		t.Fatalf("bus_apps %v", got)
	}

	if err := newer.Unregister(ctx); err != nil {
		t.Fatal(err)
	}
	if rdb.Exists(ctx, "bus_app:billing_api").Val() != 0 || !reflect.DeepEqual(rdb.SMembers(ctx, "bus_apps").Val(), []string{"other"}) {
		t.Fatal("Unregister left the app behind")
	}
	// An app without subscriptions unregisters when it registers.
	if err := bus.NewApp(rdb, "other", nil).Register(ctx); err != nil {
		t.Fatal(err)
	}
	if rdb.Exists(ctx, "bus_apps", "bus_app:other").Val() != 0 {
		t.Fatal("registering no subscriptions left keys")
	}
}

func TestNamespace(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	app := bus.NewApp(rdb, "ns_app", &bus.AppConfig{Namespace: "myapp"})
	app.Subscribe("a", newRecorder().handler())
	if err := app.Register(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rdb.Exists(context.Background(), "myapp:bus_apps", "myapp:bus_app:ns_app").Val() != 2 {
		t.Fatal("namespaced keys missing")
	}
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Queues: []string{"bus_incoming", "ns_app_default"}})
	if _, err := bus.Attach(srv, app); err == nil || !strings.Contains(err.Error(), "Namespace") {
		t.Fatalf("attaching to a server of another namespace: %v", err)
	}
	srv = sidekiq.NewServer(rdb, &sidekiq.Config{Namespace: "myapp", Queues: []string{"bus_incoming", "ns_app_default"}})
	if _, err := bus.Attach(srv, app); err != nil {
		t.Fatal(err)
	}
}

func TestAttachChecksQueues(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	newApp := func() *bus.App {
		app := bus.NewApp(rdb, "billing", nil)
		app.Subscribe("a", newRecorder().handler())
		app.Subscribe("b", newRecorder().handler(), bus.Queue("critical"))
		return app
	}
	cases := []struct {
		name    string
		queues  []string
		cfg     *bus.Config
		missing []string
	}{
		{"nothing", []string{"default"}, nil, []string{"bus_incoming", "billing_critical", "billing_default"}},
		{"no incoming", []string{"billing_default", "billing_critical"}, nil, []string{"bus_incoming"}},
		{"weights are fine", []string{"bus_incoming,1", "billing_default,5", "billing_critical,9"}, nil, nil},
		{"ride only needs no incoming", []string{"billing_default", "billing_critical"}, &bus.Config{RideOnly: true}, nil},
		{"ride only still needs the app's queues", []string{"billing_default"}, &bus.Config{RideOnly: true}, []string{"billing_critical"}},
	}
	for _, c := range cases {
		srv := sidekiq.NewServer(rdb, &sidekiq.Config{Queues: c.queues})
		app := newApp()
		_, err := bus.AttachWith(srv, c.cfg, app)
		var qe *bus.QueuesError
		switch {
		case c.missing == nil && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.missing != nil && (!errors.As(err, &qe) || !errors.Is(err, bus.ErrQueuesMissing) || !reflect.DeepEqual(qe.Missing, c.missing)):
			t.Errorf("%s: err %v, want missing %v", c.name, err, c.missing)
		case c.missing != nil:
			// A failed Attach changes nothing: the app can still be given subscriptions.
			app.Subscribe("later", newRecorder().handler())
		}
	}
}

func TestAppMisuse(t *testing.T) {
	t.Parallel()
	rdb, _ := testutil.NewEmbeddedRedis(t)
	h := newRecorder().handler()
	mustPanic := func(what string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s did not panic", what)
			}
		}()
		f()
	}
	mustPanic("an app key of punctuation", func() { bus.NewApp(rdb, "-_-", nil) })
	app := bus.NewApp(rdb, "app", nil)
	app.Subscribe("a", h)
	mustPanic("a duplicate key", func() { app.Subscribe("a", h) })
	mustPanic("an empty Match", func() { app.SubscribeMatch("m", bus.Match{}, h) })
	mustPanic("a nil handler", func() { app.Subscribe("n", nil) })
	srv := sidekiq.NewServer(rdb, &sidekiq.Config{Queues: []string{"bus_incoming", "app_default"}})
	if _, err := bus.Attach(srv, app); err != nil {
		t.Fatal(err)
	}
	mustPanic("Subscribe after Attach", func() { app.Subscribe("late", h) })
	mustPanic("a second Attach to one server", func() { _, _ = bus.Attach(srv) })
	if _, err := bus.Attach(sidekiq.NewServer(rdb, &sidekiq.Config{Queues: []string{"bus_incoming"}}), bus.NewApp(rdb, "x", nil), bus.NewApp(rdb, "X", nil)); err == nil {
		t.Error("two apps with one key attached")
	}
}
