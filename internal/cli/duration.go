package cli

import (
	"fmt"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/release"
)

// durationFlag is a duration flag that also takes days and weeks ("1d",
// "2w", "1d12h"): every duration flag of ringfence is one. Read it with
// cmd.Duration.
type durationFlag = ucli.FlagBase[time.Duration, ucli.NoConfig, dayDuration]

// dayDuration is the flag value behind durationFlag.
type dayDuration time.Duration

// Create makes the flag's value (ucli.ValueCreator).
func (dayDuration) Create(val time.Duration, p *time.Duration, _ ucli.NoConfig) ucli.Value {
	*p = val
	return (*dayDuration)(p)
}

// ToString renders a default value for the help text (ucli.ValueCreator).
func (dayDuration) ToString(val time.Duration) string { return release.FormatDuration(val) }

// Set parses a duration (flag.Value).
func (d *dayDuration) Set(s string) error {
	v, err := release.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%s", release.ErrorMessage(err))
	}
	*d = dayDuration(v)
	return nil
}

// Get returns the time.Duration (flag.Getter), which cmd.Duration reads.
func (d *dayDuration) Get() any { return time.Duration(*d) }

// String renders the value (flag.Value).
func (d *dayDuration) String() string { return release.FormatDuration(time.Duration(*d)) }
