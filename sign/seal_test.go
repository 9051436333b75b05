package sign

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"
)

func TestSealOpen(t *testing.T) {
	text, err := GenerateKeyEncryptionKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kek, err := ParseKeyEncryptionKey(text)
	if err != nil {
		t.Fatal(err)
	}
	k, err := GenerateKey(rand.Reader, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := kek.Seal(rand.Reader, k)
	if err != nil {
		t.Fatal(err)
	}
	if !Sealed(sealed) || Sealed(k.Private) || bytes.Contains(sealed, k.Private.Seed()) {
		t.Fatalf("sealed key %x", sealed)
	}
	priv, err := kek.Open(k.ID, sealed)
	if err != nil || !priv.Equal(k.Private) {
		t.Fatalf("open: %v", err)
	}
	other, err := GenerateKey(rand.Reader, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kek.Open(other.ID, sealed); err == nil {
		t.Error("opened under another key id")
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	if _, err := kek.Open(k.ID, tampered); err == nil {
		t.Error("opened a tampered key")
	}
	otherKEK, _ := GenerateKeyEncryptionKey(rand.Reader)
	wrong, _ := ParseKeyEncryptionKey(otherKEK)
	if _, err := wrong.Open(k.ID, sealed); err == nil {
		t.Error("opened with the wrong key-encryption key")
	}
	for _, bad := range []string{"", "not base64!", "AAAA"} {
		if _, err := ParseKeyEncryptionKey(bad); err == nil {
			t.Errorf("ParseKeyEncryptionKey(%q) accepted", bad)
		}
	}
}

// TestRandomKeyEncryptionKey: in-memory keys open their own seals and not
// each other's.
func TestRandomKeyEncryptionKey(t *testing.T) {
	a, err := RandomKeyEncryptionKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := RandomKeyEncryptionKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := GenerateKey(rand.Reader, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := a.Seal(rand.Reader, k)
	if err != nil {
		t.Fatal(err)
	}
	if priv, err := a.Open(k.ID, sealed); err != nil || !priv.Equal(k.Private) {
		t.Fatalf("open with its own key: %v", err)
	}
	if _, err := b.Open(k.ID, sealed); err == nil {
		t.Fatal("another random key opened the seal")
	}
	if _, err := RandomKeyEncryptionKey(bytes.NewReader(nil)); err == nil {
		t.Fatal("no error from an empty random source")
	}
}
