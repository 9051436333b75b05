package api_test

import (
	"encoding/json"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/ringfence/ringfence/api"
	"github.com/ringfence/ringfence/release"
)

// TestWireForm: the bodies encode as docs/api.md shows them, and as the
// client sent them before they were shared: fields left empty are left
// out where the server reads them as empty anyway.
func TestWireForm(t *testing.T) {
	notify := false
	for _, tc := range []struct {
		v    any
		want string
	}{
		{api.Identity{TokenID: "t1", Name: "ci", Role: release.RoleReleaser}, `{"name":"ci","role":"releaser","token_id":"t1"}`},
		{api.Pause{Reason: "slow"}, `{"reason":"slow"}`},
		{api.Pause{Reason: "slow", IncidentURL: "https://status.example/1"}, `{"reason":"slow","incident_url":"https://status.example/1"}`},
		{api.NewGateResult{Name: "upgrade-test", Status: release.GatePass}, `{"name":"upgrade-test","status":"pass"}`},
		{api.NewCustomer{Name: "bigbank", Ring: "early"}, `{"name":"bigbank","ring":"early"}`},
		{api.NewBundle{}, `{}`},
		{api.Empty{}, `{}`},
		{api.Resolution{Message: "fixed", Notify: &notify}, `{"message":"fixed","notify":false}`},
		{api.RingPatch{}, `{}`},
		{api.RoleHolder{Who: "alice"}, `{"who":"alice"}`},
		{api.PullRequest{Reason: "broken", Action: release.ActionHold}, `{"reason":"broken","action":"hold"}`},
		{api.Token{Secret: "rf_x"}, `{"id":"","name":"","role":"","created_at":"0001-01-01T00:00:00Z","created_by":"","last_used_at":null,"revoked_at":null,"token":"rf_x"}`},
	} {
		b, err := json.Marshal(tc.v)
		if err != nil || string(b) != tc.want {
			t.Errorf("%T: %s %v, want %s", tc.v, b, err, tc.want)
		}
	}
}

// TestQueriesRoundTrip: what the client encodes, the server reads back;
// malformed values are refused naming the parameter.
func TestQueriesRoundTrip(t *testing.T) {
	a := api.AuditQuery{Before: 7, Product: "acme", Release: "3.30.0", Action: "gate", Actor: "ci", Since: time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)}
	if got, err := api.ReadAuditQuery(a.Values()); err != nil || !reflect.DeepEqual(got, a) {
		t.Errorf("audit query %+v read back as %+v, %v", a, got, err)
	}
	i := api.InstallationQuery{Offset: 5, Version: "1.2.0", Customer: "bigbank", Ring: "early", Health: release.HealthCorrupt}
	if got, err := api.ReadInstallationQuery(i.Values()); err != nil || got != i {
		t.Errorf("installation query %+v read back as %+v, %v", i, got, err)
	}
	for _, bad := range []url.Values{{"before": {"0"}}, {"release": {"v1.0.0"}}, {"since": {"yesterday"}}} {
		if _, err := api.ReadAuditQuery(bad); release.ErrorCode(err) != release.EINVALID {
			t.Errorf("audit query %v: %v, want invalid", bad, err)
		}
	}
	for _, bad := range []url.Values{{"offset": {"-1"}}, {"version": {"1.x"}}} {
		if _, err := api.ReadInstallationQuery(bad); release.ErrorCode(err) != release.EINVALID {
			t.Errorf("installation query %v: %v, want invalid", bad, err)
		}
	}
}
