package pool

// SetStandby turns standby on or off. A standby pool (a high-availability
// follower's) still polls every device but commands none: State takes what
// each device does as what is wanted, so a device another instance moved is
// not "drifted" and is not commanded back, and when the instance takes
// over it starts from the devices as they are. Apply is not affected (the
// daemon's fence keeps a follower from calling it).
func (p *Pool) SetStandby(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.standby = on
}
