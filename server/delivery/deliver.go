package delivery

import (
	"context"
	"errors"
)

type deliverState struct{}

// Deliver delivers msg (the whole message, CRLF or LF line ends) for one
// recipient. On success the message is stored (fsynced), discarded,
// redirected or otherwise handled as the scripts said; on error nothing
// was stored and the error says how to answer (SMTPStatus, ExitCode).
func (d *Deliverer) Deliver(ctx context.Context, env Envelope, msg []byte) (*Result, error) {
	return nil, Temporary(errors.New("delivery: not implemented yet"))
}
