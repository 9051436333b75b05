.PHONY: build test run serve bench

build:
	go build -o bin/ringfence ./cmd/ringfence

# Every test, on real PostgreSQL clusters, SQLite files and HTTP servers.
test:
	scripts/test.sh

# A living demo on a throwaway store: prints the console's URL and a login.
run:
	go run ./cmd/ringfence serve --demo --listen 127.0.0.1:8080

# The release control plane on an embedded SQLite file.
serve:
	go run ./cmd/ringfence serve --db ringfence.db
