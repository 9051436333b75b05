package api

import (
	"net/url"
	"strconv"
	"time"

	"github.com/ringfence/ringfence/release"
)

// AuditQuery is the query of GET /api/v1/audit: the filters the server
// applies before it counts Limit (0: the server's default), and the page.
type AuditQuery release.AuditFilter

// Values encodes q as query parameters; zero fields are left out.
func (q AuditQuery) Values() url.Values {
	v := url.Values{}
	if q.Before > 0 {
		v.Set("before", strconv.FormatInt(q.Before, 10))
	}
	setInt(v, "limit", q.Limit)
	setString(v, "product", q.Product)
	setString(v, "release", q.Release)
	setString(v, "action", q.Action)
	setString(v, "actor", q.Actor)
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	return v
}

// ReadAuditQuery decodes the filters and the page of v; Limit is left to
// the server, which applies its default and bound. Errors are EINVALID
// and name the parameter.
func ReadAuditQuery(v url.Values) (AuditQuery, error) {
	q := AuditQuery{Product: v.Get("product"), Action: v.Get("action"), Actor: v.Get("actor")}
	if b := v.Get("before"); b != "" {
		var err error
		if q.Before, err = strconv.ParseInt(b, 10, 64); err != nil || q.Before < 1 {
			return q, release.Errorf(release.EINVALID, "before must be a positive audit entry id")
		}
	}
	if r := v.Get("release"); r != "" {
		ver, err := release.ParseVersion(r)
		if err != nil {
			return q, release.Errorf(release.EINVALID, "release: %s", release.ErrorMessage(err))
		}
		q.Release = ver.String()
	}
	if s := v.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return q, release.Errorf(release.EINVALID, "since %q is not an RFC 3339 time (2026-01-02T15:04:05Z)", s)
		}
		q.Since = t.UTC()
	}
	return q, nil
}

// InstallationQuery is the query of GET .../installations: the filters
// the server applies before it counts Limit (0: the server's default), and
// the page.
type InstallationQuery release.InstallationFilter

// Values encodes q as query parameters; zero fields are left out.
func (q InstallationQuery) Values() url.Values {
	v := url.Values{}
	setInt(v, "limit", q.Limit)
	setInt(v, "offset", q.Offset)
	setString(v, "version", q.Version)
	setString(v, "customer", q.Customer)
	setString(v, "ring", q.Ring)
	setString(v, "health", string(q.Health))
	return v
}

// ReadInstallationQuery decodes the filters and the offset of v; Limit is
// left to the server. Errors are EINVALID and name the parameter; an
// unknown health status is one (it would silently match nothing).
func ReadInstallationQuery(v url.Values) (InstallationQuery, error) {
	q := InstallationQuery{Customer: v.Get("customer"), Ring: v.Get("ring"), Health: release.HealthStatus(v.Get("health"))}
	if o := v.Get("offset"); o != "" {
		n, err := strconv.Atoi(o)
		if err != nil || n < 0 {
			return q, release.Errorf(release.EINVALID, "offset must be an integer from 0")
		}
		q.Offset = n
	}
	if q.Health != "" && !q.Health.Valid() {
		return q, release.Errorf(release.EINVALID, "health %q is not a status: give ok, corrupt, collation_changed or unknown", q.Health)
	}
	if s := v.Get("version"); s != "" {
		ver, err := release.ParseVersion(s)
		if err != nil {
			return q, release.Errorf(release.EINVALID, "version: %s", release.ErrorMessage(err))
		}
		q.Version = ver.String()
	}
	return q, nil
}

func setString(v url.Values, name, s string) {
	if s != "" {
		v.Set(name, s)
	}
}

func setInt(v url.Values, name string, n int) {
	if n > 0 {
		v.Set(name, strconv.Itoa(n))
	}
}
