package hsm

import (
	"github.com/miekg/pkcs11"
)

// sessionPool keeps logged-in sessions on the raw module handle for signing with ECDSA
// and Ed25519 keys (poolSigner). At most size sessions are open or in use at once, so
// the pool bounds concurrent signatures as crypto11's pool does for RSA keys.
//
// Every method is called with HSM.mu held: get and put for reading, drain for writing.
// So drain, which reopen and Close call, never runs while a session is in use, and no
// session survives into the next context generation.
type sessionPool struct {
	idle  chan pkcs11.SessionHandle
	slots chan struct{} // one element per session that is open or being opened
}

func newSessionPool(size int) *sessionPool {
	return &sessionPool{
		idle:  make(chan pkcs11.SessionHandle, size),
		slots: make(chan struct{}, size),
	}
}

// get returns an idle session, or opens and logs in a new one. It blocks while size
// sessions are in use.
func (p *sessionPool) get(h *HSM) (rawSession, error) {
	p.slots <- struct{}{}
	select {
	case handle := <-p.idle:
		return rawSession{ctx: h.raw, handle: handle}, nil
	default:
	}
	session, err := h.openRawSession()
	if err != nil {
		<-p.slots
		return rawSession{}, err
	}
	return session, nil
}

// put returns a session to the pool, or closes it when it may be broken.
func (p *sessionPool) put(h *HSM, session rawSession, reusable bool) {
	if reusable {
		p.idle <- session.handle
	} else {
		_ = h.raw.CloseSession(session.handle) // the session is usually gone already
	}
	<-p.slots
}

// drain closes every idle session. The caller holds HSM.mu for writing.
func (p *sessionPool) drain(h *HSM) {
	for {
		select {
		case handle := <-p.idle:
			_ = h.raw.CloseSession(handle) // after C_Finalize the handle is already invalid
		default:
			return
		}
	}
}
