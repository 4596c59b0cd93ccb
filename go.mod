module github.com/p2pchat/p2pchat

go 1.26.8

require (
	github.com/alecthomas/kong v1.17.0
	github.com/chzyer/readline v1.5.1
	github.com/creack/pty v1.1.24
	github.com/mattn/go-isatty v0.0.20
	github.com/rs/zerolog v1.35.1
	go.etcd.io/bbolt v1.4.3
	go.uber.org/goleak v1.3.0
	golang.org/x/term v0.48.0
	pgregory.net/rapid v1.3.0
)

require (
	github.com/mattn/go-colorable v0.1.14 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/time v0.16.0 // indirect
)
