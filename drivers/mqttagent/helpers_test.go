package mqttagent

import (
	"time"
)

// waitMax bounds every wait on the network in these tests.
const waitMax = 15 * time.Second
