package outboundtest

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// slowSend sends one message whose data takes 12*gap to arrive, a
// 64 KB chunk every gap (more than the client's 4 KB buffer, so each is
// sent at once), and returns its data.
func slowSend(addr string, gap time.Duration) ([]byte, error) {
	c, err := smtp.Dial(addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return nil, err
	}
	if err := c.Mail("from@example.net", nil); err != nil {
		return nil, err
	}
	if err := c.Rcpt("to@example.org", nil); err != nil {
		return nil, err
	}
	w, err := c.Data()
	if err != nil {
		return nil, err
	}
	chunk := []byte(strings.Repeat(strings.Repeat("y", 62)+"\r\n", 1024))
	var sent bytes.Buffer
	start := time.Now()
	for time.Since(start) < 12*gap {
		if _, err := w.Write(chunk); err != nil {
			return nil, fmt.Errorf("after %d bytes in %v: %w", sent.Len(), time.Since(start), err)
		}
		sent.Write(chunk)
		time.Sleep(gap)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("%d bytes over %v, a chunk every %v: %w", sent.Len(), time.Since(start), gap, err)
	}
	return sent.Bytes(), c.Quit()
}

// TestSinkSlowData: a message whose data takes several times the read
// timeout to arrive, but never stalls that long, is accepted whole. (With
// go-smtp's deadline set once before the DATA line, the sink answered
// "554 5.0.0 Error: transaction failed: ... i/o timeout" or reset the
// connection: under -race and load the 45 MB relays of
// TestLMTPDeliverMemory bounced or were deferred for minutes.)
func TestSinkSlowData(t *testing.T) {
	const timeout = time.Second
	s := Start(t, Options{ReadTimeout: timeout})
	sent, err := slowSend(s.Addr, timeout/4)
	if err != nil {
		t.Fatal(err)
	}
	got := s.Messages()
	if len(got) != 1 || !bytes.Equal(got[0].Data, sent) {
		t.Fatalf("sink holds %d messages; want the one of %d bytes", len(got), len(sent))
	}
}

// TestSinkWaitActive: WaitActive waits for a message that takes longer
// than idle to arrive as long as its data flows, and gives up idle after
// the sink went quiet.
func TestSinkWaitActive(t *testing.T) {
	const idle = time.Second
	s := Start(t, Options{})
	errc := make(chan error, 1)
	go func() {
		_, err := slowSend(s.Addr, idle/4)
		errc <- err
	}()
	start := time.Now()
	got := s.WaitActive(1, idle)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("WaitActive returned %d messages after %v; want the one sent over %v", len(got), time.Since(start), 3*idle)
	}
	start = time.Now()
	got = s.WaitActive(2, idle)
	if el := time.Since(start); len(got) != 1 || el < idle || el > idle+10*time.Second {
		t.Fatalf("WaitActive for a message that never comes: %d messages after %v; want 1 after %v", len(got), el, idle)
	}
}
