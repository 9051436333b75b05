package incident

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestStatuspageWebhookOfAComponentChange(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 15, 30, 123456000, time.UTC)
	api := Component{ID: 3, Name: "API", Status: MajorOutage, CreatedAt: at, UpdatedAt: at}
	sp := NewStatuspage(SPPage{ID: "p1", Name: "Acme", URL: "https://s.example"}, Page{Components: []Component{api}, UpdatedAt: at})
	n := Notification{ID: 7, Kind: KindComponentStatus, Component: &api, At: at,
		Change: &ComponentChange{ComponentID: 3, Name: "API", OldStatus: Operational, NewStatus: MajorOutage}}
	b, err := json.Marshal(sp.Webhook(n, "https://docs.example"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"page":{"id":"p1","status_indicator":"critical","status_description":"Major System Outage"}`,
		`"component_update":{"id":"n7","created_at":"2026-12-06T10:15:30Z","old_status":"operational","new_status":"major_outage","component_id":"c3","component_type":"Component"}`,
		`"component":{"id":"c3","name":"API","status":"major_outage"`,
		`"generated_at":"2026-12-06T10:15:30Z"`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("payload lacks %s:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), `"incident"`) {
		t.Errorf("a component webhook carries an incident:\n%s", b)
	}
}

func TestStatuspageCancelledMaintenanceIsCompleted(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	m := Maintenance{ID: 2, Title: "DB", Status: MaintenanceCancelled, ScheduledFor: at, ScheduledUntil: at.Add(time.Hour), CompletedAt: &at,
		Updates: []MaintenanceUpdate{{ID: 5, Status: MaintenanceCancelled, Body: "Cancelled.", At: at}}}
	got := NewStatuspage(SPPage{ID: "p1", URL: "https://s.example"}, Page{}).Maintenance(m)
	if got.Status != "completed" || got.Impact != "maintenance" || got.IncidentUpdates[0].Status != "completed" ||
		got.ID != "m2" || got.Shortlink != "https://s.example/maintenance/2" || got.ScheduledFor == nil || got.ResolvedAt == nil {
		t.Errorf("maintenance = %+v", got)
	}
}
