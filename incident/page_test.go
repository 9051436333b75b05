package incident

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestHistoryWorstPerDay(t *testing.T) {
	now := time.Date(2026, 12, 6, 15, 0, 0, 0, time.UTC)
	day := func(n int) time.Time { return DayStart(now).AddDate(0, 0, -n) }
	c := Component{ID: 1, CreatedAt: day(3).Add(6 * time.Hour)}
	changes := []StatusChange{
		{1, Operational, day(3).Add(6 * time.Hour)},
		{1, MajorOutage, day(2).Add(10 * time.Hour)},
		{1, DegradedPerformance, day(2).Add(11 * time.Hour)},
		{2, MajorOutage, day(1)}, // another component's
		{1, Operational, day(1).Add(time.Hour)},
		{1, UnderMaintenance, day(0).Add(time.Hour)},
		{1, Operational, day(0).Add(2 * time.Hour)},
	}
	resolved := day(1).Add(30 * time.Minute)
	incs := []Incident{
		{ID: 10, Components: []int64{1}, CreatedAt: day(2).Add(10 * time.Hour), ResolvedAt: &resolved},
		{ID: 11, Components: []int64{2}, CreatedAt: day(2)},                  // other component
		{ID: 12, Components: []int64{1}, CreatedAt: day(2), Draft: true},     // drafts are not public
		{ID: 13, Components: []int64{1}, CreatedAt: day(0).Add(time.Minute)}, // open
	}
	h := History(c, changes, incs, now, 5)
	want := []Day{
		{day(4), "", []int64{}},
		{day(3), Operational, []int64{}},
		{day(2), MajorOutage, []int64{10}},
		{day(1), DegradedPerformance, []int64{10}},
		{day(0), UnderMaintenance, []int64{13}},
	}
	if !reflect.DeepEqual(h.Days, want) {
		t.Errorf("history\n got %+v\nwant %+v", h.Days, want)
	}
}

func TestPulledNoticesFollowPulledTargets(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	pulled := []PulledRelease{
		{Product: "app", Version: "3.30.0", Action: "upgrade", Target: "3.30.1", At: at, Reason: "corrupts indexes", IncidentID: 4},
		{Product: "app", Version: "3.30.1", Action: "upgrade", Target: "3.30.3", At: at.Add(time.Hour), Reason: "still corrupts", IncidentID: 4},
		{Product: "app", Version: "3.30.2", Action: "upgrade", Target: "3.30.3", At: at.Add(2 * time.Hour), Reason: "same", IncidentID: 5},
		{Product: "app", Version: "4.0.0", Action: "rollback", Target: "3.30.3", At: at, Reason: "r"},
		{Product: "tool", Version: "1.0.0", Action: "hold", At: at, Reason: "wait"},
		{Product: "loop", Version: "1.0.0", Action: "upgrade", Target: "1.0.1", At: at},
		{Product: "loop", Version: "1.0.1", Action: "rollback", Target: "1.0.0", At: at},
	}
	got := PulledNotices(pulled)
	want := []PulledNotice{
		{Product: "app", Versions: []string{"3.30.0", "3.30.1", "3.30.2"}, Action: "upgrade", Target: "3.30.3", Reason: "same", Incidents: []int64{4, 5}, At: at.Add(2 * time.Hour)},
		{Product: "app", Versions: []string{"4.0.0"}, Action: "rollback", Target: "3.30.3", Reason: "r", Incidents: []int64{}, At: at},
		{Product: "tool", Versions: []string{"1.0.0"}, Action: "hold", Reason: "wait", Incidents: []int64{}, At: at},
		{Product: "loop", Versions: []string{"1.0.0", "1.0.1"}, Action: "hold", Incidents: []int64{}, At: at},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("notices\n got %+v\nwant %+v", got, want)
	}
}

func TestPageStatus(t *testing.T) {
	for _, tc := range []struct {
		name  string
		page  Page
		want  Indicator
		words string
	}{
		{"quiet", Page{Components: []Component{{Status: Operational}}}, IndicatorNone, "All Systems Operational"},
		{"degraded", Page{Components: []Component{{Status: DegradedPerformance}}}, IndicatorMinor, "Minor Service Outage"},
		{"partial", Page{Components: []Component{{Status: PartialOutage}}}, IndicatorMajor, "Partial System Outage"},
		{"incident", Page{Unresolved: []Incident{{Impact: ImpactCritical}}}, IndicatorCritical, "Major System Outage"},
		{"maintenance", Page{Components: []Component{{Status: UnderMaintenance}}}, IndicatorMaintenance, "Service Under Maintenance"},
		{"outage beats maintenance", Page{Components: []Component{{Status: UnderMaintenance}, {Status: MajorOutage}},
			Maintenances: []Maintenance{{Status: MaintenanceInProgress}}}, IndicatorCritical, "Major System Outage"},
		{"active maintenance", Page{Maintenances: []Maintenance{{Status: MaintenanceVerifying}}}, IndicatorMaintenance, "Service Under Maintenance"},
	} {
		ind, words := tc.page.Status()
		if ind != tc.want || words != tc.words {
			t.Errorf("%s: %s %q, want %s %q", tc.name, ind, words, tc.want, tc.words)
		}
	}
}

func TestComponentStatusOrder(t *testing.T) {
	if Worst(Operational, UnderMaintenance) != UnderMaintenance || Worst(MajorOutage, PartialOutage) != MajorOutage {
		t.Error("worst")
	}
	if _, err := ParseComponentStatus("down"); ErrorCode(err) != EINVALID {
		t.Error("unknown status parsed")
	}
	for name, ok := range map[string]bool{"API": true, "Check-in endpoint": true, "": false, " API": false, "a=b": false, "x\ny": false} {
		if err := ValidateName("component", name); (err == nil) != ok {
			t.Errorf("%q: %v", name, err)
		}
	}
}

// FuzzPulledNotices checks PulledNotices' promises on arbitrary pulls: every
// pulled version is in exactly one notice of its product, and no notice
// sends customers to a version that is itself pulled.
func FuzzPulledNotices(f *testing.F) {
	f.Add([]byte{0, 1, 1, 2, 2, 0, 3, 3, 0})
	f.Add([]byte{5, 1, 6, 6, 2, 5, 7, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		// Each 3 bytes: a version (0-7), an action (upgrade, rollback, hold),
		// a target (0-7); one product, each version pulled at most once.
		var pulled []PulledRelease
		seen := map[string]bool{}
		for i := 0; i+2 < len(data) && len(pulled) < 8; i += 3 {
			v := fmt.Sprintf("1.0.%d", data[i]%8)
			if seen[v] {
				continue
			}
			seen[v] = true
			p := PulledRelease{Product: "app", Version: v, Action: []string{"upgrade", "rollback", "hold"}[data[i+1]%3]}
			if p.Action != "hold" {
				p.Target = fmt.Sprintf("1.0.%d", data[i+2]%8)
			}
			pulled = append(pulled, p)
		}
		slices.SortFunc(pulled, func(a, b PulledRelease) int { return strings.Compare(a.Version, b.Version) })
		count := map[string]int{}
		for _, n := range PulledNotices(pulled) {
			if seen[n.Target] {
				t.Fatalf("notice %+v sends customers to a pulled version", n)
			}
			if (n.Action == "hold") != (n.Target == "") {
				t.Fatalf("notice %+v: hold goes without a target, and only hold", n)
			}
			for _, v := range n.Versions {
				count[v]++
			}
		}
		for v := range seen {
			if count[v] != 1 {
				t.Fatalf("version %s is in %d notices", v, count[v])
			}
		}
	})
}
