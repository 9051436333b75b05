package agent

import (
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"time"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sign"
)

// Status is what `agent status` shows: everything from the state directory,
// nothing from the network.
type Status struct {
	StateDir   string          `json:"state_dir"`
	InstanceID string          `json:"instance_id"`
	Version    release.Version `json:"version,omitzero"`
	// Answer is the last verified answer, verified again now.
	Answer *AnswerStatus `json:"answer"`
	// Guidance is the answer's word on the running version in plain words
	// (empty without a verified answer).
	Guidance    string            `json:"guidance,omitempty"`
	Databases   []*DatabaseHealth `json:"databases"`
	Undelivered []QueuedEvent     `json:"undelivered_events"`
	// Rejected are the events the server refused, set aside (with why) in
	// outbox/rejected so that later check-ins go on.
	Rejected    []RejectedEvent `json:"rejected_events,omitempty"`
	LastAttempt time.Time       `json:"last_attempt,omitzero"`
	LastError   string          `json:"last_error,omitempty"`
	NextDue     time.Time       `json:"next_checkin_due,omitzero"`
	PinnedKeys  []string        `json:"pinned_keys"`
	PinnedFrom  string          `json:"pinned_from,omitempty"`
	// LearnedKeys are keys learnt from signed answers or bundles during
	// key rotations, each trusted while the key that vouched for it is.
	LearnedKeys []LearnedKey `json:"learned_keys,omitempty"`
	// HandoverError says why the latest answer's key handover taught
	// nothing (see State.HandoverError).
	HandoverError string `json:"key_handover_error,omitempty"`
	// UnpinnedSigners are keys that signed the latest answer but are
	// neither pinned nor learned: a key rotation to follow.
	UnpinnedSigners []string `json:"unpinned_signers,omitempty"`
	// Bundle is the air-gapped state (nil when never run offline).
	Bundle *BundleStatus `json:"bundle,omitempty"`
	// FailedUpgrades are the upgrades that failed here and have not
	// succeeded since; preflight refuses them without --retry-failed.
	FailedUpgrades []release.Event `json:"failed_upgrades,omitempty"`
}

// AnswerStatus is a kept answer and how it verifies now.
type AnswerStatus struct {
	// Verified is true when the kept envelope verifies with the trusted keys
	// (as of its issue time when expired).
	Verified bool `json:"verified"`
	// Expired is true once the answer's validity has passed: its guidance
	// still stands as the last word, but it no longer permits an upgrade.
	Expired    bool            `json:"expired"`
	Error      string          `json:"error,omitempty"`
	ReceivedAt time.Time       `json:"received_at"`
	Answer     *release.Answer `json:"answer,omitempty"`
}

// ReadStatus reads the state directory's status at now.
func ReadStatus(sd *StateDir, now time.Time) (Status, error) {
	st, err := sd.Load()
	if err != nil {
		return Status{}, err
	}
	out, err := sd.Outbox()
	if err != nil {
		return Status{}, err
	}
	rejected, err := sd.Rejected()
	if err != nil {
		return Status{}, err
	}
	s := Status{StateDir: sd.Path(), InstanceID: st.InstanceID, Version: st.Version, Undelivered: out,
		LastAttempt: st.LastAttempt, LastError: st.LastError, NextDue: st.NextDue, PinnedFrom: st.PinnedFrom,
		UnpinnedSigners: st.UnpinnedSigners, PinnedKeys: []string{}, Databases: []*DatabaseHealth{}}
	for _, k := range st.Pinned {
		s.PinnedKeys = append(s.PinnedKeys, k.ID)
	}
	trusted := st.trusted()
	for _, l := range st.Learned { // those trusted now, without their envelopes
		if slices.ContainsFunc(trusted, func(k sign.PublicKey) bool { return k.ID == l.Key.ID }) {
			l.Envelope = sign.Envelope{}
			s.LearnedKeys = append(s.LearnedKeys, l)
		}
	}
	s.HandoverError, s.Rejected = st.HandoverError, rejected
	for _, d := range st.Databases {
		s.Databases = append(s.Databases, d)
	}
	sort.Slice(s.Databases, func(i, j int) bool { return s.Databases[i].Name < s.Databases[j].Name })
	s.Bundle = bundleStatus(st, now)
	for _, e := range st.FailedUpgrades {
		s.FailedUpgrades = append(s.FailedUpgrades, e)
	}
	sort.Slice(s.FailedUpgrades, func(i, j int) bool { return s.FailedUpgrades[i].To.Less(s.FailedUpgrades[j].To) })
	if st.Last != nil {
		s.Answer = verifyKept(st.Last, trusted, now)
		if s.Answer.Verified {
			s.Guidance = Guidance(*s.Answer.Answer)
		}
	}
	return s, nil
}

// verifyKept verifies a kept answer at now, and when it has expired, as of
// its issue time (a tampered state file fails either way).
func verifyKept(k *KeptAnswer, pinned []sign.PublicKey, now time.Time) *AnswerStatus {
	as := &AnswerStatus{ReceivedAt: k.ReceivedAt}
	ans, err := client.VerifyAnswer(k.Envelope, pinned, k.InstanceID, k.Nonce, now)
	if errors.Is(err, sign.ErrExpired) {
		as.Expired = true
		var v struct {
			IssuedAt time.Time `json:"issued_at"`
		}
		if json.Unmarshal(k.Envelope.Payload, &v) == nil {
			ans, err = client.VerifyAnswer(k.Envelope, pinned, k.InstanceID, k.Nonce, v.IssuedAt)
		}
	}
	if err != nil {
		as.Error = err.Error()
		return as
	}
	as.Verified, as.Answer = true, &ans
	return as
}
