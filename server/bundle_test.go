package server_test

import (
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/ringfence/ringfence/internal/servertest"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/server"
	"github.com/ringfence/ringfence/sign"
)

// TestBundleAnswersAsCheckIn: a bundle issued by the server, verified with
// /v1/keys, gives every installation of the customer the answer its online
// check-in gets (pause, pull guidance, rollout included); sequences grow per
// customer; a customer without an enrollment key gets a 409 and spends no
// sequence number; bundles are audited.
func TestBundleAnswersAsCheckIn(t *testing.T) {
	e := startServer(t, servertest.SQLite(t), server.Config{})
	key := setupProduct(e)
	p := "/api/v1/products/acme"
	e.api("PATCH", p+"/rings/all", map[string]any{"rollout_percent": 50}, http.StatusOK, nil)
	for _, v := range []string{"1.1.0", "1.2.0", "1.3.0"} {
		e.api("POST", p+"/releases", map[string]any{"version": v}, http.StatusCreated, nil)
	}
	e.api("POST", p+"/releases/1.2.0/pull", map[string]any{"reason": "breaks", "action": "upgrade", "target": "1.3.0"}, http.StatusOK, nil)
	e.api("POST", p+"/releases/1.1.0/pause", map[string]any{"reason": "slow"}, http.StatusOK, nil)

	var env sign.Envelope
	e.api("POST", p+"/customers/bigbank/bundles", map[string]any{"valid": "10d"}, http.StatusCreated, &env)
	payload, err := sign.Verify(env, e.publicKeys(), time.Now())
	if err != nil {
		t.Fatalf("bundle does not verify against /v1/keys: %v", err)
	}
	b, err := release.DecodeBundle(payload)
	if err != nil {
		t.Fatal(err)
	}
	if b.Sequence != 1 || b.Customer != "bigbank" || b.ExpiresAt.Sub(b.IssuedAt) != 10*24*time.Hour || len(b.KeyChecks) != 1 {
		t.Fatalf("bundle %+v", b)
	}
	offers := 0
	for i := range 30 {
		for _, v := range []string{"1.0.0", "1.1.0", "1.2.0", "1.3.0"} {
			id := fmt.Sprintf("inst-%d", i)
			online, _ := e.checkIn(key, checkIn{InstanceID: id, Product: "acme", Version: v})
			offline, err := release.DecideBundle(b, release.Installation{InstanceID: id, Product: "acme", Version: release.MustParseVersion(v)}, online.IssuedAt)
			if err != nil {
				t.Fatal(err)
			}
			offline.Nonce, offline.ExpiresAt = online.Nonce, online.ExpiresAt
			if !reflect.DeepEqual(offline, online) {
				t.Fatalf("%s on %s:\n bundle %+v\n online %+v", id, v, offline, online)
			}
			if online.Offer != nil {
				offers++
			}
		}
	}
	if offers == 0 {
		t.Fatal("no answer compared carried an offer")
	}

	e.api("POST", p+"/customers/bigbank/bundles", nil, http.StatusCreated, &env)
	payload, _ = sign.Verify(env, e.publicKeys(), time.Now())
	if b, _ := release.DecodeBundle(payload); b.Sequence != 2 || b.ExpiresAt.Sub(b.IssuedAt) != release.DefaultBundleValidity {
		t.Fatalf("second bundle: sequence %d, validity %s", b.Sequence, b.ExpiresAt.Sub(b.IssuedAt))
	}
	e.api("POST", p+"/customers/nobody/bundles", nil, http.StatusNotFound, nil)
	e.api("POST", p+"/customers/bigbank/bundles", map[string]any{"valid": "400d"}, http.StatusBadRequest, nil)
	e.api("POST", p+"/customers", map[string]any{"name": "keyless", "ring": "all"}, http.StatusCreated, nil)
	e.api("POST", p+"/customers/keyless/bundles", nil, http.StatusConflict, nil)
	e.enroll("acme", "keyless2", "all")
	e.api("POST", p+"/customers/keyless2/bundles", nil, http.StatusCreated, &env)
	payload, _ = sign.Verify(env, e.publicKeys(), time.Now())
	if b, _ := release.DecodeBundle(payload); b.Sequence != 1 {
		t.Fatalf("first bundle of another customer: sequence %d", b.Sequence)
	}
	if n := len(e.auditEntries("bundle.create")); n != 3 {
		t.Fatalf("%d bundle.create audit entries, want 3", n)
	}
	// A malformed export is a 400, not a 403 or 500.
	e.api("POST", "/api/v1/exports", map[string]any{"payload": "e30=", "signatures": []any{}}, http.StatusBadRequest, nil)
}
