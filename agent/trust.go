package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/ringfence/ringfence/sign"
)

// ReadTrustFile reads public keys in the /v1/keys format
// ({"keys": [{"keyid", "public_key", "created_at"}]}), each checked against
// its id.
func ReadTrustFile(path string) ([]sign.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read trust file: %w", err)
	}
	var doc struct {
		Keys []sign.PublicKey `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("read trust file %s: %w", path, err)
	}
	if len(doc.Keys) == 0 {
		return nil, fmt.Errorf("trust file %s holds no keys", path)
	}
	for _, k := range doc.Keys {
		if err := k.Validate(); err != nil {
			return nil, fmt.Errorf("trust file %s: %w", path, err)
		}
	}
	return doc.Keys, nil
}

// pin adds keys to st's pinned keys and returns the ids it added.
func pin(st *State, keys []sign.PublicKey) []string {
	var added []string
	for _, k := range keys {
		if !slices.ContainsFunc(st.Pinned, func(p sign.PublicKey) bool { return p.ID == k.ID }) {
			st.Pinned = append(st.Pinned, k)
			added = append(added, k.ID)
		}
	}
	return added
}

// ensureTrust makes sure st has pinned keys. With a trust file, the file is
// authoritative, read at every check-in: its keys are the pinned keys, so a
// product update that ships a rotated key reaches the agent, and one that
// leaves out a compromised key revokes it. Without one, trust-on-first-use
// pins the server's /v1/keys once, with a loud warning, when nothing is
// pinned yet. Keys are never learnt from the network after that: see
// docs/agent.md, "Keys".
func (a *Agent) ensureTrust(ctx context.Context, st *State) error {
	if a.cfg.TrustFile != "" {
		keys, err := ReadTrustFile(a.cfg.TrustFile)
		if err != nil {
			return err
		}
		var removed []string
		for _, p := range st.Pinned {
			if !slices.ContainsFunc(keys, func(k sign.PublicKey) bool { return k.ID == p.ID }) {
				removed = append(removed, p.ID)
			}
		}
		added := pin(&State{Pinned: st.Pinned}, keys)
		if len(removed) > 0 {
			a.log.Warn("unpinned answer-signing keys the trust file no longer lists", "keys", strings.Join(removed, ","), "file", a.cfg.TrustFile)
		}
		if len(added) > 0 {
			a.log.Info("pinned answer-signing keys from the trust file", "keys", strings.Join(added, ","), "file", a.cfg.TrustFile)
		}
		st.Pinned, st.PinnedFrom = keys, "trust file "+a.cfg.TrustFile
		return nil
	}
	if len(st.Pinned) > 0 {
		return nil
	}
	if !a.cfg.TrustOnFirstUse {
		return fmt.Errorf("no answer-signing key is pinned: give --trust FILE (the keys the vendor ships) or, once, --trust-on-first-use")
	}
	keys, err := a.client.PublicKeys(ctx)
	if err != nil {
		return fmt.Errorf("trust on first use: fetch /v1/keys: %w", err)
	}
	if len(keys) == 0 {
		return fmt.Errorf("trust on first use: %s/v1/keys lists no keys", a.cfg.Server)
	}
	added := pin(st, keys)
	st.PinnedFrom = "trust on first use of " + a.cfg.Server
	a.log.Warn("TRUST ON FIRST USE: pinned the answer-signing keys the server presented, without checking them against anything; "+
		"compare these key ids with the ones your vendor publishes, and prefer --trust FILE",
		"keys", strings.Join(added, ","), "server", a.cfg.Server)
	return nil
}
