# dirigent — see README.md. `make run` and `make test` are all a fresh
# Debian 12 machine with Go needs.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN     := bin/dirigent

.PHONY: all build run test peers bench fuzz clean package

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/dirigent

# The daemon on its embedded default configuration: desk on
# http://127.0.0.1:8080, data in ./dirigent-data.
run: build
	./$(BIN) serve

# Every test, with the race detector, after installing the Debian test
# peers (as root; otherwise their tests skip and say which package).
test: peers
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

peers:
	bash scripts/install-test-peers

# dist/dirigent_<version>_amd64.deb and dist/dirigent-<version>.x86_64.rpm,
# built by nfpm (a Go tool in go.mod). The version comes from git describe;
# override it with `make package PKG_VERSION=1.2.0`.
package:
	GO=$(GO) DIRIGENT_PKG_VERSION=$(PKG_VERSION) bash scripts/build-package

# Benchmarks whose figures go into BENCHMARKS.md.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3s ./...

# A short run of every native fuzz test (parsers of outside input).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./config/
	$(GO) test -run '^$$' -fuzz FuzzNormalize -fuzztime 30s ./journey/
	$(GO) test -run '^$$' -fuzz FuzzReadCSV -fuzztime 30s ./journey/
	$(GO) test -run '^$$' -fuzz FuzzDecodeTouchpoint -fuzztime 30s ./desk/
	$(GO) test -run '^$$' -fuzz FuzzDecodeBody -fuzztime 30s ./desk/
	$(GO) test -run '^$$' -fuzz FuzzPageLanguage -fuzztime 30s ./desk/
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./mail/
	$(GO) test -run '^$$' -fuzz FuzzProcess -fuzztime 30s ./mail/
	$(GO) test -run '^$$' -fuzz '^FuzzParseSDP$$' -fuzztime 30s ./sip/
	$(GO) test -run '^$$' -fuzz '^FuzzDigest$$' -fuzztime 30s ./sip/
	$(GO) test -run '^$$' -fuzz '^FuzzDTMF$$' -fuzztime 30s ./sip/
	$(GO) test -run '^$$' -fuzz '^FuzzScreenDatagram$$' -fuzztime 30s ./sip/
	$(GO) test -run '^$$' -fuzz '^FuzzParseWAV$$' -fuzztime 30s ./sip/
	$(GO) test -run '^$$' -fuzz '^FuzzMessage$$' -fuzztime 30s ./sip/
	$(GO) test -run '^$$' -fuzz FuzzReadIntake -fuzztime 30s ./store/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeFrame$$' -fuzztime 30s ./chat/

clean:
	rm -rf bin dist
