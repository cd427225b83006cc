package web

import (
	"errors"
	"fmt"
	"net/http"
)

// HAView is this instance's high-availability role, in /api/v1/state (nil
// without `ha:`).
type HAView struct {
	Instance string `json:"instance"`
	Role     string `json:"role"` // "leader" or "follower"
	// Term is the current leader's term (its etcd election revision) as
	// this instance last saw it; 0 before any leader is known.
	Term       int64  `json:"term"`
	Leader     string `json:"leader,omitempty"`      // the leader's instance name, if known
	LeaderHTTP string `json:"leader_http,omitempty"` // the leader's advertised HTTP address, if known
}

// NotLeaderError is returned by SetOverride and ClearOverrides on a
// follower: only the leader takes overrides. The API answers 421
// Misdirected Request naming the leader.
type NotLeaderError struct {
	Leader, LeaderHTTP string
}

func (e *NotLeaderError) Error() string {
	switch {
	case e.LeaderHTTP != "":
		return fmt.Sprintf("this instance is a follower: send overrides to the leader %s at http://%s", e.Leader, e.LeaderHTTP)
	case e.Leader != "":
		return fmt.Sprintf("this instance is a follower: send overrides to the leader %s", e.Leader)
	}
	return "this instance is a follower and no leader is known yet: retry shortly"
}

// notLeader answers a follower's refusal; false when err is not one.
func notLeader(w http.ResponseWriter, err error) bool {
	var nl *NotLeaderError
	if !errors.As(err, &nl) {
		return false
	}
	if nl.LeaderHTTP != "" {
		w.Header().Set("Location", "http://"+nl.LeaderHTTP+"/api/v1/override")
	}
	writeError(w, http.StatusMisdirectedRequest, nl.Error())
	return true
}

// pageHA is the status page's HA line.
type pageHA struct {
	Instance, Role, Leader, LeaderHTTP string
	Term                               int64
}

func newPageHA(v *HAView) *pageHA {
	if v == nil {
		return nil
	}
	return &pageHA{Instance: v.Instance, Role: v.Role, Leader: v.Leader, LeaderHTTP: v.LeaderHTTP, Term: v.Term}
}
