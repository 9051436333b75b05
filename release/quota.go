package release

// QuotaUsage is how much of its quotas one customer used, as the server
// counts it (GET …/status, `ringfence release status`): installations its
// enrollment keys created this hour, the most events one of its
// installations reported today, and the bytes its instance history takes
// in the store. A limit of 0 is no limit.
type QuotaUsage struct {
	Product           string `json:"product"`
	Customer          string `json:"customer"`
	NewInstances      int    `json:"new_instances_this_hour"`
	NewInstancesLimit int    `json:"new_instances_limit"`
	MaxEvents         int    `json:"max_events_per_installation_today"`
	EventsLimit       int    `json:"events_limit"`
	StoredBytes       int64  `json:"stored_bytes"`
	StoredBytesLimit  int64  `json:"stored_bytes_limit"`
}
