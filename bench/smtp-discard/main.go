// Command smtp-discard is bench/mail-smtp-source.sh's second reference:
// an SMTP server on go-smtp, the library dirigent's mail channel uses,
// that accepts every message and keeps nothing. Its rate is what the
// library and Go allow on the machine before anything is stored.
package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/emersion/go-smtp"
)

type backend struct{}

type session struct{}

func (backend) NewSession(*smtp.Conn) (smtp.Session, error) { return session{}, nil }
func (session) Mail(string, *smtp.MailOptions) error        { return nil }
func (session) Rcpt(string, *smtp.RcptOptions) error        { return nil }
func (session) Reset()                                      {}
func (session) Logout() error                               { return nil }

func (session) Data(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: smtp-discard 127.0.0.1:PORT")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s := smtp.NewServer(backend{})
	s.Domain = "localhost"
	if err := s.Serve(ln); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
