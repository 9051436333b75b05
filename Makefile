.PHONY: build test run bench

build:
	go build -o bin/ringfence ./cmd/ringfence

# Every test, on real PostgreSQL clusters, SQLite files and HTTP servers.
test:
	scripts/test.sh

# The release control plane on an embedded SQLite file.
run:
	go run ./cmd/ringfence serve --db ringfence.db
