// Package mail sends mail.
package mail

import msg "example.com/fixture/internal/message"

// Send sends a mail.
type Send struct{}

// The mail module's requests.
var SendRequest = msg.NewRequest[Send, struct{}]("mail.Send")
