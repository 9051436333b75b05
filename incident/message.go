package incident

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// EventID is the stable id of notification id's message.
func EventID(id int64) string { return "msg_n" + strconv.FormatInt(id, 10) }

// NewMessage renders notification n once for every subscriber: the
// Statuspage webhook payload (sp holds the page as read when fanning out,
// for the overall status and component names) and the email's subject and
// text. docs is the URL put in the payload's meta.documentation.
func NewMessage(n Notification, sp *Statuspage, docs string) (Message, error) {
	payload := sp.Webhook(n, docs)
	payload.Meta.Unsubscribe = sp.Site.URL
	body, err := json.Marshal(payload)
	if err != nil {
		return Message{}, fmt.Errorf("encode notification %d: %w", n.ID, err)
	}
	subject, text := describe(n, sp)
	return Message{
		EventID: EventID(n.ID), Kind: string(n.Kind), Subject: "[" + sp.Site.Name + "] " + subject, Body: body, Text: text,
		Components: append([]int64{}, n.Components...), At: n.At,
	}, nil
}

// statusWords are how statuses read in a sentence.
var statusWords = map[string]string{
	"investigating": "Investigating", "identified": "Identified", "monitoring": "Monitoring", "resolved": "Resolved",
	"postmortem": "Postmortem", "scheduled": "Scheduled", "in_progress": "In progress", "verifying": "Verifying",
	"completed": "Completed", "cancelled": "Cancelled",
	"operational": "Operational", "degraded_performance": "Degraded performance", "partial_outage": "Partial outage",
	"major_outage": "Major outage", "under_maintenance": "Under maintenance",
}

func word(s string) string {
	if w, ok := statusWords[s]; ok {
		return w
	}
	return s
}

// describe returns the subject and plain text of n.
func describe(n Notification, sp *Statuspage) (string, string) {
	var b strings.Builder
	var subject string
	changes := func(cs []ComponentChange) {
		for _, c := range cs {
			fmt.Fprintf(&b, "  %s: %s → %s\n", c.Name, word(string(c.OldStatus)), word(string(c.NewStatus)))
		}
	}
	switch {
	case n.Incident != nil:
		inc := n.Incident
		subject = word(string(inc.Status)) + ": " + inc.Title
		fmt.Fprintf(&b, "%s\nImpact: %s\n\n", inc.Title, inc.Impact)
		if u := n.Update; u != nil {
			fmt.Fprintf(&b, "%s — %s\n%s\n", word(string(u.Status)), u.At.UTC().Format("2006-01-02 15:04 MST"), u.Body)
			if len(u.Components) > 0 {
				b.WriteString("\nComponents:\n")
				changes(u.Components)
			}
		}
		fmt.Fprintf(&b, "\nIncident page: %s\n", IncidentURL(sp.Site.URL, inc.ID))
	case n.Maintenance != nil:
		m := n.Maintenance
		subject = "Maintenance " + strings.ToLower(word(string(m.Status))) + ": " + m.Title
		fmt.Fprintf(&b, "%s\nScheduled: %s to %s\n\n", m.Title,
			m.ScheduledFor.UTC().Format("2006-01-02 15:04 MST"), m.ScheduledUntil.UTC().Format("2006-01-02 15:04 MST"))
		if u := n.MaintenanceUpdate; u != nil {
			fmt.Fprintf(&b, "%s — %s\n%s\n", word(string(u.Status)), u.At.UTC().Format("2006-01-02 15:04 MST"), u.Body)
			changes(u.Components)
		}
		fmt.Fprintf(&b, "\nMaintenance page: %s\n", MaintenanceURL(sp.Site.URL, m.ID))
	case n.Component != nil:
		c := n.Component
		subject = c.Name + ": " + word(string(c.Status))
		if n.Change != nil {
			fmt.Fprintf(&b, "%s changed from %s to %s.\n", c.Name, word(string(n.Change.OldStatus)), word(string(n.Change.NewStatus)))
		} else {
			fmt.Fprintf(&b, "%s is now %s.\n", c.Name, word(string(c.Status)))
		}
		fmt.Fprintf(&b, "\nStatus page: %s\n", sp.Site.URL)
	default:
		subject = "Status update"
		fmt.Fprintf(&b, "Status page: %s\n", sp.Site.URL)
	}
	return subject, b.String()
}

// ConfirmMessage is the opt-in request sent to a new email subscriber; id
// makes its event id unique per request.
func ConfirmMessage(site SPPage, subscriberID string, n int64) Message {
	text := "Someone (hopefully you) asked to receive status updates of " + site.Name + " at this address.\n" +
		"Nothing will be sent unless you confirm by following the link below. If it was not you, ignore this email.\n"
	return Message{
		EventID: "msg_c" + subscriberID + "_" + strconv.FormatInt(n, 10), Kind: KindConfirm,
		Subject: "Confirm your subscription to " + site.Name, Body: []byte("{}"), Text: text, Components: []int64{},
	}
}
