package release

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPauseResume(t *testing.T) {
	r := rel("3.30.0")
	if err := r.Resume(); ErrorCode(err) != ECONFLICT {
		t.Fatalf("resume of an ok release: %v", err)
	}
	if err := r.Pause("alice", "", "", t0); ErrorCode(err) != EINVALID {
		t.Fatalf("pause without reason: %v", err)
	}
	if err := r.Pause("alice", "odd sorting", "not a url", t0); ErrorCode(err) != EINVALID {
		t.Fatalf("pause with a bad incident URL: %v", err)
	}
	if err := r.Pause("alice", "odd sorting", "https://status.acme.example/i/1", t0); err != nil {
		t.Fatal(err)
	}
	if r.Status != StatusPaused || r.Paused == nil || r.Paused.By != "alice" || !r.Paused.At.Equal(t0) {
		t.Fatalf("after pause: %+v", r)
	}
	if err := r.Resume(); err != nil || r.Status != StatusOK || r.Paused != nil {
		t.Fatalf("resume: %v %+v", err, r)
	}
}

func TestPull(t *testing.T) {
	others := []Release{
		rel("3.29.2", func(r *Release) { r.Status = StatusPulled }),
		rel("3.29.4"),
		rel("3.30.0"),
		rel("3.30.1", func(r *Release) { r.Status = StatusPaused }),
		rel("3.30.2", func(r *Release) { r.RequiredStop = true }),
		rel("3.30.3"),
		rel("3.30.4", func(r *Release) { r.RequiredStop = true; r.Status = StatusPulled }),
		rel("3.30.5"),
	}
	tests := []struct {
		name     string
		safeTo   string
		pull     Pull
		wantCode string
	}{
		{"upgrade to the next stop", "", Pull{Reason: "r", Action: ActionUpgrade, Target: v("3.30.2")}, ""},
		{"upgrade past a required stop", "", Pull{Reason: "r", Action: ActionUpgrade, Target: v("3.30.3")}, ECONFLICT},
		{"upgrade to a paused release", "", Pull{Reason: "r", Action: ActionUpgrade, Target: v("3.30.1")}, ECONFLICT},
		{"upgrade to a missing release", "", Pull{Reason: "r", Action: ActionUpgrade, Target: v("3.30.9")}, ECONFLICT}, // checked in order: the stop 3.30.2 comes first
		{"upgrade to a missing release below the stop", "", Pull{Reason: "r", Action: ActionUpgrade, Target: v("3.30.1-rc.1")}, ENOTFOUND},
		{"upgrade to a lower release", "", Pull{Reason: "r", Action: ActionUpgrade, Target: v("3.29.4")}, EINVALID},
		{"rollback without rollback-safe mark", "", Pull{Reason: "r", Action: ActionRollback, Target: v("3.29.4")}, ECONFLICT},
		{"rollback to the marked version", "3.29.4", Pull{Reason: "r", Action: ActionRollback, Target: v("3.29.4")}, ""},
		{"rollback below the marked version", "3.29.4", Pull{Reason: "r", Action: ActionRollback, Target: v("3.29.3")}, ECONFLICT},
		{"rollback to itself", "3.29.4", Pull{Reason: "r", Action: ActionRollback, Target: v("3.30.0")}, ECONFLICT},
		{"rollback to a missing release", "3.29.0", Pull{Reason: "r", Action: ActionRollback, Target: v("3.29.3")}, ENOTFOUND},
		{"rollback to a pulled release", "3.29.0", Pull{Reason: "r", Action: ActionRollback, Target: v("3.29.2")}, ECONFLICT},
		{"hold", "", Pull{Reason: "r", Action: ActionHold}, ""},
		{"hold with a target", "", Pull{Reason: "r", Action: ActionHold, Target: v("3.30.2")}, EINVALID},
		{"no guidance", "", Pull{Reason: "r"}, EINVALID},
		{"action none", "", Pull{Reason: "r", Action: ActionNone}, EINVALID},
		{"unknown action", "", Pull{Reason: "r", Action: "pray"}, EINVALID},
		{"no reason", "", Pull{Action: ActionHold}, EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rel("3.30.0")
			if tt.safeTo != "" {
				r.RollbackSafeTo = v(tt.safeTo)
			}
			err := r.Pull(tt.pull, others, t0)
			if ErrorCode(err) != tt.wantCode {
				t.Fatalf("Pull: %v, want code %q", err, tt.wantCode)
			}
			if err == nil {
				if r.Status != StatusPulled || r.Pulled == nil || r.Pulled.Action != tt.pull.Action || !r.Pulled.At.Equal(t0) {
					t.Fatalf("after pull: %+v", r)
				}
				if err := r.Pull(tt.pull, others, t0); ErrorCode(err) != ECONFLICT {
					t.Fatalf("second pull: %v", err)
				}
				if err := r.Resume(); ErrorCode(err) != ECONFLICT {
					t.Fatalf("resume of a pulled release: %v", err)
				}
				if err := r.Pause("a", "b", "", t0); ErrorCode(err) != ECONFLICT {
					t.Fatalf("pause of a pulled release: %v", err)
				}
			} else if r.Status != StatusOK || r.Pulled != nil {
				t.Fatalf("failed pull changed the release: %+v", r)
			}
		})
	}
}

func TestForcePromote(t *testing.T) {
	r := rel("3.30.0")
	p, err := ForcePromote(r, "stable", "alice", RoleReleaser, "bigbank needs the fix now", t0)
	if err != nil || !p.Forced || p.Ring != "stable" || p.By != "alice" || !p.EnteredAt.Equal(t0) {
		t.Fatalf("ForcePromote: %+v %v", p, err)
	}
	if _, err := ForcePromote(r, "stable", "alice", RoleAdmin, "x", t0); err != nil {
		t.Fatalf("admin: %v", err)
	}
	if _, err := ForcePromote(r, "stable", "bob", RoleViewer, "x", t0); ErrorCode(err) != EFORBIDDEN {
		t.Fatalf("viewer: %v", err)
	}
	if _, err := ForcePromote(r, "stable", "bob", "root", "x", t0); ErrorCode(err) != EFORBIDDEN {
		t.Fatalf("unknown role: %v", err)
	}
	if _, err := ForcePromote(r, "stable", "alice", RoleReleaser, "", t0); ErrorCode(err) != EINVALID {
		t.Fatalf("no reason: %v", err)
	}
	r.Status = StatusPaused
	if _, err := ForcePromote(r, "stable", "alice", RoleReleaser, "x", t0); ErrorCode(err) != ECONFLICT {
		t.Fatalf("paused: %v", err)
	}
}

func TestRoles(t *testing.T) {
	order := []Role{RoleViewer, RoleReleaser, RoleIncident, RoleAdmin}
	for i, a := range order {
		for j, b := range order {
			if a.AtLeast(b) != (i >= j) {
				t.Errorf("%s.AtLeast(%s) = %v", a, b, a.AtLeast(b))
			}
		}
		if Role("").AtLeast(a) || Role("superuser").AtLeast(a) {
			t.Errorf("unknown role passes %s", a)
		}
	}
}

func TestHoldResolve(t *testing.T) {
	h := Hold{ID: "h1", Product: "acme", Version: v("3.30.0"), Reason: "odd", RaisedBy: "bob", RaisedAt: t0}
	if err := h.Validate(); err != nil || !h.Open() {
		t.Fatalf("new hold: %v", err)
	}
	if err := h.Resolve("alice", "", t0); ErrorCode(err) != EINVALID {
		t.Fatalf("resolve without resolution: %v", err)
	}
	if err := h.Resolve("alice", "false alarm", at(time.Hour)); err != nil || h.Open() || h.ResolvedBy != "alice" {
		t.Fatalf("resolve: %v %+v", err, h)
	}
	if err := h.Resolve("alice", "again", t0); ErrorCode(err) != ECONFLICT {
		t.Fatalf("second resolve: %v", err)
	}
	if err := (Hold{RaisedBy: "bob"}).Validate(); ErrorCode(err) != EINVALID {
		t.Fatalf("hold without reason: %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		err  error
		ok   bool
	}{
		{"name ok", ValidateName("product", "acme-db_2.x"), true},
		{"name upper", ValidateName("product", "Acme"), false},
		{"name leading dash", ValidateName("product", "-acme"), false},
		{"name empty", ValidateName("product", ""), false},
		{"name long", ValidateName("product", strings.Repeat("a", 65)), false},
		{"name space", ValidateName("ring", "early adopters"), false},
		{"product dup gates", Product{Name: "a", RequiredGates: []string{"g", "g"}, Policy: DefaultPolicy()}.Validate(), false},
		{"product bad gate", Product{Name: "a", RequiredGates: []string{"G!"}, Policy: DefaultPolicy()}.Validate(), false},
		{"product zero policy", Product{Name: "a"}.Validate(), false},
		{"product ok", Product{Name: "a", RequiredGates: []string{"collation-compare"}, Policy: DefaultPolicy()}.Validate(), true},
		{"release ok", rel("3.30.0", func(r *Release) { r.RollbackSafeTo = v("3.29.0"); r.NotesURL = "https://x.example/n" }).Validate(), true},
		{"release rollback-safe not lower", rel("3.30.0", func(r *Release) { r.RollbackSafeTo = v("3.30.0") }).Validate(), false},
		{"release bad notes URL", rel("3.30.0", func(r *Release) { r.NotesURL = "javascript:alert(1)" }).Validate(), false},
		{"release no version", Release{Product: "acme", Status: StatusOK}.Validate(), false},
		{"release bad status", rel("3.30.0", func(r *Release) { r.Status = "gone" }).Validate(), false},
		{"ring ok", Ring{Name: "early", Position: 1, SoakTime: time.Hour, RolloutPercent: 12.5, MinHealthy: 3}.Validate(), true},
		{"ring percent", Ring{Name: "early", RolloutPercent: 101}.Validate(), false},
		{"ring negative soak", Ring{Name: "early", SoakTime: -1}.Validate(), false},
		{"ring negative position", Ring{Name: "early", Position: -1}.Validate(), false},
		{"ring negative min healthy", Ring{Name: "early", MinHealthy: -1}.Validate(), false},
		{"customer ok", Customer{Name: "bigbank", Ring: "stable"}.Validate(), true},
		{"customer no ring", Customer{Name: "bigbank"}.Validate(), false},
		{"gate ok", GateResult{Name: "collation-compare", Status: GatePass, URL: "https://ci.example/1"}.Validate(), true},
		{"gate bad status", GateResult{Name: "collation-compare", Status: "passed"}.Validate(), false},
	}
	for _, tt := range tests {
		if (tt.err == nil) != tt.ok {
			t.Errorf("%s: %v", tt.name, tt.err)
		}
		if tt.err != nil && ErrorCode(tt.err) != EINVALID {
			t.Errorf("%s: code %s", tt.name, ErrorCode(tt.err))
		}
	}
}

func TestRingJSON(t *testing.T) {
	r := Ring{Product: "acme", Name: "insiders", Position: 0, SoakTime: 36 * time.Hour, RolloutPercent: 100, MinHealthy: 5}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"soak":"36h0m0s"`) {
		t.Fatalf("ring JSON %s", b)
	}
	var back Ring
	if err := json.Unmarshal(b, &back); err != nil || back != r {
		t.Fatalf("round trip %+v %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"name":"x","soak":"a while"}`), &back); err == nil {
		t.Fatal("bad soak accepted")
	}
}

func TestErrors(t *testing.T) {
	err := Errorf(ENOTFOUND, "release %s not found", "acme@1.0.0")
	wrapped := errors.Join(errors.New("context"), err)
	if ErrorCode(wrapped) != ENOTFOUND || ErrorMessage(wrapped) != "release acme@1.0.0 not found" {
		t.Fatalf("code %q message %q", ErrorCode(wrapped), ErrorMessage(wrapped))
	}
	plain := errors.New("disk on fire at /var/lib")
	if ErrorCode(plain) != EINTERNAL || strings.Contains(ErrorMessage(plain), "disk") {
		t.Fatalf("internal errors must not leak: %q", ErrorMessage(plain))
	}
	if ErrorCode(nil) != "" || ErrorMessage(nil) != "" {
		t.Fatal("nil error")
	}
}
