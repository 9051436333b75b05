// Command gendoc writes ringfence's generated CLI reference: docs/cli.md
// (Markdown, the default) or the ringfence(1) man page (-man). Run it from
// the module root: go run ./internal/cli/gendoc -o docs/cli.md
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/ringfence/ringfence/internal/cli"
)

func main() {
	man := flag.Bool("man", false, "write the ringfence(1) man page instead of Markdown")
	out := flag.String("o", "", "write to `FILE` instead of stdout")
	flag.Parse()
	text := cli.Reference()
	if *man {
		text = cli.ManPage()
	}
	if *out == "" {
		fmt.Print(text)
		return
	}
	if err := os.WriteFile(*out, []byte(text), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gendoc:", err)
		os.Exit(1)
	}
}
