package cli_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAPICommandsJSONShape: every API command's --json is one object like
// the pg commands' reports, schema_version first and duration_seconds
// last; a list is its items; what severity list prints, severity set
// takes back.
func TestAPICommandsJSONShape(t *testing.T) {
	url, admin := apiServer(t)
	api(t, url, admin, "product", "create", "acme")
	for _, args := range [][]string{{"product", "list"}, {"product", "show", "acme"}, {"keys", "list"}, {"whoami"}, {"ring", "list", "acme"}} {
		out := api(t, url, admin, append(args, "--json")...)
		var doc map[string]json.RawMessage
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("%s --json is not an object: %v\n%s", args, err, out)
		}
		var d float64
		if string(doc["schema_version"]) != "1" || json.Unmarshal(doc["duration_seconds"], &d) != nil || d < 0 ||
			!strings.HasPrefix(out, "{\n  \"schema_version\": 1,") || !strings.Contains(out, "\"duration_seconds\":") ||
			strings.LastIndex(out, "\"duration_seconds\"") < strings.LastIndex(out, "\n  \"") {
			t.Errorf("%s --json: want schema_version first and duration_seconds last:\n%s", args, out)
		}
		if args[len(args)-1] == "list" && args[0] != "keys" {
			var items []json.RawMessage
			if err := json.Unmarshal(doc["items"], &items); err != nil {
				t.Errorf("%s --json: items is not a list: %v\n%s", args, err, out)
			}
		}
	}
	if out := api(t, url, admin, "ring", "list", "acme", "--json"); !strings.Contains(out, `"items": []`) {
		t.Errorf("an empty list is items: []:\n%s", out)
	}

	// severity list --json → severity set FILE.
	file := filepath.Join(t.TempDir(), "severities.json")
	if err := os.WriteFile(file, []byte(api(t, url, admin, "incident", "severity", "list", "--json")), 0o600); err != nil {
		t.Fatal(err)
	}
	api(t, url, admin, "incident", "severity", "set", file)

	// The server filters: the limit counts matching entries.
	api(t, url, admin, "ring", "create", "acme", "all", "--position", "0")
	if es := apiJSON[[]struct{ Action string }](t, url, admin, "audit", "--action", "product", "--limit", "1"); len(es) != 1 || es[0].Action != "product.create" {
		t.Errorf("audit --action product --limit 1: %+v", es)
	}
	// Malformed filters are refused, naming the parameter.
	hc := &http.Client{Timeout: 30 * time.Second}
	for path, want := range map[string]string{
		"/api/v1/audit?since=yesterday":                    "since",
		"/api/v1/audit?release=v1":                         "release",
		"/api/v1/products/acme/installations?offset=-1":    "offset",
		"/api/v1/products/acme/installations?version=1.x":  "version",
		"/api/v1/products/acme/installations?limit=100000": "limit",
	} {
		req, _ := http.NewRequest("GET", url+path, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p struct{ Detail string }
		_ = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(p.Detail, want) {
			t.Errorf("GET %s: %d %q, want 400 naming %s", path, resp.StatusCode, p.Detail, want)
		}
	}
}
