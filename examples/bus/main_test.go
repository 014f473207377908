package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestBusExample runs the example against the embedded Redis: every subscriber got its
// events (the pattern subscription both user events, the pro subscription only the pro
// sign-up, the delayed event when due), the event nobody subscribes to was dropped and
// counted.
func TestBusExample(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatalf("example failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		`bus_app:billing  pro_signup    {"queue_name":"billing_critical","key":"pro_signup","class":"::QueueBus::Rider","matcher":{"bus_event_type":"user_created","plan":"pro"}}`,
		"billing:  open an account for user 7 on the pro plan",
		"billing:  open an account for user 8 on the free plan",
		"billing:  send the pro welcome kit to user 7 (queue billing_critical)",
		"billing:  trial of user 7 ends",
		`mailer:   user_created mail to user 7 in "fr"`,
		`mailer:   user_created mail to user 8 in "en"`,
		`mailer:   user_deleted mail to user 9 in "en"`,
		"events driven 5, subscriber jobs 7, dropped (nobody subscribes) 1, delayed published 1",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "welcome kit to user 8") {
		t.Errorf("the pro subscription got a free sign-up:\n%s", out.String())
	}
}
