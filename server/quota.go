package server

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sqlstore"
)

// Quotas bound what one enrollment key can make the server store, beyond
// the rate limit: new instance ids per key per hour, events per
// installation per day, and stored bytes per customer (its installations,
// events and failing health reports, all its keys together).
//
// The check-in path counts in memory and makes no store round trip for a
// routine check-in: events are counted when the check-in is accepted;
// installations created and bytes written are counted when their batch
// commits (sqlstore.WriteCheckIns reports the installations it created).
// Only a key already over its new-instance quota costs a lookup per
// check-in (is this instance id known?), so its known installations keep
// being served. Stored bytes are recounted from the store at start and
// after every prune. Counts are per server process: several servers
// sharing a PostgreSQL store each allow the hourly and daily quotas, and a
// restart starts them over.
type quotas struct {
	newPerHour   int
	eventsPerDay int
	storedBytes  int64

	mu     sync.Mutex
	hour   int64
	day    int64
	newIDs map[string]int        // enrollment key id → installations created this hour
	events map[instanceRef]int   // installation → events accepted today
	bytes  map[customerRef]int64 // customer → estimated stored bytes
}

type instanceRef = sqlstore.InstallationRef
type customerRef = sqlstore.CustomerRef

// Quota names, in problems, metrics and logs.
const (
	quotaNewInstances = "new_instances_per_hour"
	quotaEvents       = "events_per_installation_per_day"
	quotaStoredBytes  = "stored_bytes"
)

func newQuotas(cfg Config) *quotas {
	return &quotas{newPerHour: cfg.QuotaNewInstances, eventsPerDay: cfg.QuotaEvents, storedBytes: cfg.QuotaStoredBytes,
		newIDs: map[string]int{}, events: map[instanceRef]int{}, bytes: map[customerRef]int64{}}
}

// roll starts new periods' counts; q.mu is held.
func (q *quotas) roll(now time.Time) {
	if h := now.Unix() / 3600; h != q.hour {
		q.hour, q.newIDs = h, map[string]int{}
	}
	if d := now.Unix() / 86400; d != q.day {
		q.day, q.events = d, map[instanceRef]int{}
	}
}

// quotaExceeded says which quota, if any, a check-in exceeds, and for how
// many seconds. It reserves the check-in's events. known is asked only for
// a key over its new-instance quota.
func (s *Server) quotaExceeded(ctx context.Context, keyID string, inst instanceRef, events int, stores bool, now time.Time) (string, int, error) {
	q := s.quotas
	q.mu.Lock()
	q.roll(now)
	overNew := q.newPerHour > 0 && q.newIDs[keyID] >= q.newPerHour
	overBytes := stores && q.storedBytes > 0 && q.bytes[customerRef{Product: inst.Product, Customer: inst.Customer}] >= q.storedBytes
	overEvents := events > 0 && q.eventsPerDay > 0 && q.events[inst]+events > q.eventsPerDay
	q.mu.Unlock()
	switch {
	case overBytes:
		return quotaStoredBytes, 3600, nil
	case overEvents:
		return quotaEvents, int(86400 - now.Unix()%86400), nil
	}
	if overNew {
		known, err := s.store.InstallationKnown(ctx, inst.Product, inst.Customer, inst.InstanceID)
		if err != nil {
			return "", 0, err
		}
		if !known {
			return quotaNewInstances, int(3600 - now.Unix()%3600), nil
		}
	}
	if events > 0 {
		q.mu.Lock()
		q.events[inst] += events
		q.mu.Unlock()
	}
	return "", 0, nil
}

// committed counts what a committed batch stored: the installations it
// created (against the keys that sent them) and the bytes of its rows.
func (q *quotas) committed(batch []queued, created []instanceRef, now time.Time) {
	var byInst map[instanceRef]string // only when the batch created installations
	if len(created) > 0 {
		byInst = make(map[instanceRef]string, len(batch))
		for _, b := range batch {
			byInst[instanceRef{Product: b.rec.Product, Customer: b.rec.Customer, InstanceID: b.rec.InstanceID}] = b.keyID
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.roll(now)
	for _, c := range created {
		q.newIDs[byInst[c]]++
		q.bytes[customerRef{Product: c.Product, Customer: c.Customer}] += sqlstore.InstallationRowBytes
	}
	for _, b := range batch {
		var n int64
		for _, e := range b.rec.Events {
			n += sqlstore.EventRowBytes + int64(len(e.Detail))
		}
		if h := b.rec.Health; h != nil && h.Status.Failing() {
			n += sqlstore.HealthRowBytes + int64(len(h.Detail))
		}
		if n > 0 {
			q.bytes[customerRef{Product: b.rec.Product, Customer: b.rec.Customer}] += n
		}
	}
}

// recountBytes replaces the stored-bytes counts with the store's.
func (s *Server) recountBytes(ctx context.Context) error {
	b, err := s.store.StoredBytes(ctx)
	if err != nil {
		return err
	}
	s.quotas.mu.Lock()
	s.quotas.bytes = b
	s.quotas.mu.Unlock()
	return nil
}

// usage returns each customer's quota use, for product ("" for all), in
// product and customer order. keys maps enrollment key ids to customers.
func (q *quotas) usage(product string, keys map[string]customerRef, now time.Time) []release.QuotaUsage {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.roll(now)
	by := map[customerRef]*release.QuotaUsage{}
	get := func(c customerRef) *release.QuotaUsage {
		if by[c] == nil {
			by[c] = &release.QuotaUsage{Product: c.Product, Customer: c.Customer,
				NewInstancesLimit: q.newPerHour, EventsLimit: q.eventsPerDay, StoredBytesLimit: q.storedBytes}
		}
		return by[c]
	}
	for id, n := range q.newIDs {
		if c, ok := keys[id]; ok && (product == "" || c.Product == product) {
			get(c).NewInstances += n
		}
	}
	for in, n := range q.events {
		if product == "" || in.Product == product {
			u := get(customerRef{Product: in.Product, Customer: in.Customer})
			u.MaxEvents = max(u.MaxEvents, n)
		}
	}
	for c, n := range q.bytes {
		if product == "" || c.Product == product {
			get(c).StoredBytes = n
		}
	}
	out := make([]release.QuotaUsage, 0, len(by))
	for _, u := range by {
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Product != out[j].Product {
			return out[i].Product < out[j].Product
		}
		return out[i].Customer < out[j].Customer
	})
	return out
}

// keyCustomers maps the live enrollment keys' ids to their customers.
func (st *state) keyCustomers() map[string]customerRef {
	out := make(map[string]customerRef, len(st.keys))
	for _, k := range st.keys {
		out[k.ID] = customerRef{Product: k.Product, Customer: k.Customer}
	}
	return out
}

// quotaCollector exposes each customer's quota use as
// ringfence_quota_usage{product, customer, quota} at scrape time.
type quotaCollector struct {
	s    *Server
	desc *prometheus.Desc
}

// Describe implements prometheus.Collector.
func (c quotaCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c quotaCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.state.Load()
	if st == nil {
		return
	}
	for _, u := range c.s.quotas.usage("", st.keyCustomers(), time.Now()) {
		for quota, v := range map[string]float64{quotaNewInstances: float64(u.NewInstances), quotaEvents: float64(u.MaxEvents), quotaStoredBytes: float64(u.StoredBytes)} {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, u.Product, u.Customer, quota)
		}
	}
}
