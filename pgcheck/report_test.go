package pgcheck

import (
	"errors"
	"testing"
)

// TestOptionErrorNamesFields: a library message names option fields, a
// caller words it with its own names, and values keep their % signs.
func TestOptionErrorNamesFields(t *testing.T) {
	sentinel := errors.New("no relation matched")
	e := optionErrorf(sentinel, "%s {{Tables}} 100%% {{Indexes}} x in database(s) %s", sentinel, "db%d")
	if got, want := e.Error(), "no relation matched Tables 100% Indexes x in database(s) db%d"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	flags := map[string]string{"Tables": "--table", "Indexes": "--index"}
	if got, want := e.Phrase(func(f string) string { return flags[f] }), "no relation matched --table 100% --index x in database(s) db%d"; got != want {
		t.Errorf("Phrase = %q, want %q", got, want)
	}
	if !errors.Is(e, sentinel) {
		t.Error("an OptionError is not its sentinel")
	}
}
