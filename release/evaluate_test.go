package release

import "time"

// EvaluateHalt counts the events and health reports of product's release v
// within policy's window before now (CountHalt) and judges them (JudgeHalt):
// auto-halt over values in memory, as the tests state its rules. The server
// counts in SQL (sqlstore.HaltCounts) and judges with JudgeHalt.
func EvaluateHalt(policy Policy, product string, v Version, events []InstanceEvent, health []HealthReport, now time.Time) (bool, Evidence) {
	since := now.Add(-policy.Window)
	return JudgeHalt(policy, product, v, CountHalt(v, events, health, since, now), since, now)
}
