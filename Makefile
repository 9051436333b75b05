.PHONY: build test run serve bench docs man dist

PORT ?= 8080
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64

build:
	go build -o bin/ringfence ./cmd/ringfence

# Every test, on real PostgreSQL clusters, SQLite files and HTTP servers.
test:
	scripts/test.sh

# A living demo on a throwaway store: prints the console's URL and a login.
run:
	go run ./cmd/ringfence serve --demo --listen 127.0.0.1:$(PORT)

# The release control plane on an embedded SQLite file.
serve:
	go run ./cmd/ringfence serve --db ringfence.db --listen :$(PORT)

# The generated CLI reference (checked by TestCLIReferenceIsCurrent) and man page.
docs:
	go run ./internal/cli/gendoc -o docs/cli.md

man:
	mkdir -p bin/man/man1
	go run ./internal/cli/gendoc -man -o bin/man/man1/ringfence.1

# Release binaries for every platform in PLATFORMS, with SHA-256 checksums,
# in dist/: ringfence-VERSION-OS-ARCH (static, stamped with the VCS revision).
dist:
	rm -rf dist && mkdir -p dist
	set -e; for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch go build -buildvcs=true -trimpath -ldflags="-s -w" \
			-o dist/ringfence-$(VERSION)-$$os-$$arch ./cmd/ringfence; \
	done
	cd dist && sha256sum ringfence-* > SHA256SUMS
