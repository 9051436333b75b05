package fault_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ringfence/ringfence/internal/fault"
)

// TestCodeAndMessageReadTheChain checks that a wrapped *Error gives its code
// and message, any other error is internal with a generic message, and nil
// is neither.
func TestCodeAndMessageReadTheChain(t *testing.T) {
	err := fmt.Errorf("create product: %w", fault.Errorf(fault.ECONFLICT, "product %s exists", "acme"))
	if got := fault.Code(err); got != fault.ECONFLICT {
		t.Errorf("Code = %q, want conflict", got)
	}
	if got := fault.Message(err); got != "product acme exists" {
		t.Errorf("Message = %q", got)
	}
	if got := err.Error(); got != "create product: conflict: product acme exists" {
		t.Errorf("Error() = %q", got)
	}
	other := errors.New("disk on fire at /var/lib/x")
	if fault.Code(other) != fault.EINTERNAL || fault.Message(other) != "internal error" {
		t.Errorf("plain error: code %q, message %q", fault.Code(other), fault.Message(other))
	}
	if fault.Code(nil) != "" || fault.Message(nil) != "" {
		t.Errorf("nil: code %q, message %q", fault.Code(nil), fault.Message(nil))
	}
}

// TestConstIsComparable checks that a constant error is found in a chain by
// errors.Is and reads as its message.
func TestConstIsComparable(t *testing.T) {
	const errClosed fault.Const = "closed"
	err := fmt.Errorf("commit: %w", errClosed)
	if !errors.Is(err, errClosed) || errors.Is(err, fault.Const("open")) {
		t.Errorf("errors.Is does not tell %v apart", err)
	}
	if errClosed.Error() != "closed" {
		t.Errorf("Error() = %q", errClosed.Error())
	}
}
