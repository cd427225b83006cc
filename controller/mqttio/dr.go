package mqttio

import (
	"github.com/switchd/switchd/dr"
	"go.uber.org/zap"
)

// ReasonRefused is the rejection reason of a well-formed demand-response
// event the controller would not take (an update of an ended event, too
// many events in force); the daemon counts it under signal "dr".
const ReasonRefused = "refused"

// drInput is the demand-response side of a Source: events arrive as one
// JSON object a message on their own topic, not as a scalar signal.
type drInput struct {
	log rejectLog // rate limit of rejection log lines
}

// handleDR parses one message of the demand-response topic and hands a
// valid event to OnDR; an invalid one is rejected, counted through
// OnDRReject and logged at most once per rejectLogInterval. Called with
// s.mu held.
//
// With DRPublisherKey the event comes signed, as the value of the envelope
// of signed signals (SignJSON), and the replay rule of signed inputs
// applies; retained is the MQTT retain flag as delivered.
func (s *Source) handleDR(topic string, payload []byte, retained bool) {
	var signed signedMessage
	if key := s.opts.DRPublisherKey; key != nil {
		var reason string
		var err error
		// The envelope adds the ts and signature to an event of up to
		// dr.MaxPayloadBytes.
		if signed, reason, err = verify(key, topic, payload, dr.MaxPayloadBytes+256); err != nil {
			s.rejectDR(payload, reason, err)
			return
		}
		if drop, err := s.signedDR.replayed(signed.ts, signed.sig, retained); drop {
			if err != nil {
				s.rejectDR(payload, ReasonReplayed, err)
			}
			return
		}
		payload = signed.value
	}
	ev, reason, err := dr.Parse(payload)
	if err != nil {
		s.rejectDR(payload, reason, err)
		return
	}
	if signed.sig != nil {
		s.signedDR = signedLast{ts: signed.ts, sig: signed.sig}
	}
	s.opts.OnDR(ev)
}

// rejectDR counts and logs (rate-limited) a rejected event. Called with
// s.mu held.
func (s *Source) rejectDR(payload []byte, reason string, err error) {
	if s.opts.OnDRReject != nil {
		s.opts.OnDRReject(reason)
	}
	s.dr.log.warn(s.log, s.clock.Now(), "demand-response event rejected", payload,
		zap.String("topic", s.opts.DRTopic),
		zap.String("reason", reason),
		zap.Error(err))
}

// topicSignal names what a subscribed topic carries, for log lines: a
// signal's name, or "dr" for the demand-response topic.
func (s *Source) topicSignal(topic string) string {
	if topic == s.opts.DRTopic && topic != "" {
		return "dr"
	}
	return signalName(s.topics[topic])
}
