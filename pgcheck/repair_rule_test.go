package pgcheck

import "testing"

func TestParseDedupeRule(t *testing.T) {
	tests := []struct {
		in      string
		want    DedupeRule
		wantErr bool
	}{
		{in: "keep-newest:updated_at", want: DedupeRule{KeepNewest: true, Column: "updated_at"}},
		{in: "keep-oldest:id", want: DedupeRule{Column: "id"}},
		{in: "users=keep-newest:updated_at", want: DedupeRule{Table: "users", KeepNewest: true, Column: "updated_at"}},
		{in: "shop.users=keep-oldest:created_at", want: DedupeRule{Table: "shop.users", Column: "created_at"}},
		{in: "keep-latest:updated_at", wantErr: true},
		{in: "keep-newest", wantErr: true},
		{in: "keep-newest:", wantErr: true},
		{in: "=keep-newest:x", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseDedupeRule(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseDedupeRule(%q) error %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if got != tt.want {
			t.Errorf("ParseDedupeRule(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if got.String() != tt.in {
			t.Errorf("ParseDedupeRule(%q).String() = %q", tt.in, got.String())
		}
	}
}

func TestRuleForPrefersTheTable(t *testing.T) {
	rules := []DedupeRule{
		{KeepNewest: true, Column: "updated_at"},
		{Table: "users", Column: "id"},
		{Table: "audit.events", Column: "seq"},
	}
	cases := []struct {
		schema, table string
		want          string
	}{
		{"public", "users", "id"},
		{"public", "tags", "updated_at"},
		{"audit", "events", "seq"},
		{"public", "events", "updated_at"},
	}
	for _, c := range cases {
		if got := ruleFor(rules, c.schema, c.table); got == nil || got.Column != c.want {
			t.Errorf("ruleFor(%s.%s) = %+v, want column %s", c.schema, c.table, got, c.want)
		}
	}
	if got := ruleFor(rules[1:], "public", "tags"); got != nil {
		t.Errorf("ruleFor without a general rule = %+v, want nil", got)
	}
}
