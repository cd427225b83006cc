package policies

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/switchd/switchd"
)

// TestDispatchIncumbentPrice: a lead price values incumbents (only) at the
// price where their shed would land, with the hold given beside it.
func TestDispatchIncumbentPrice(t *testing.T) {
	tests := []struct {
		name       string
		price      float64
		incumbents int
		lead       LeadPrice
		wantMining int
	}{
		{name: "no lead price: incumbents stay at 50", price: 50, incumbents: 10, wantMining: 10},
		{name: "a spike where the shed lands: leave", price: 50, incumbents: 10, lead: LeadPrice{USDPerMWh: 3000, OK: true}, wantMining: 0},
		{name: "not OK: ignored", price: 50, incumbents: 10, lead: LeadPrice{USDPerMWh: 3000}, wantMining: 10},
		{name: "cheap where the shed lands: stay through a dear now", price: 3000, incumbents: 10, lead: LeadPrice{USDPerMWh: 50, OK: true}, wantMining: 10},
		{name: "newcomers keep the live price", price: 50, incumbents: 4, lead: LeadPrice{USDPerMWh: 3000, OK: true}, wantMining: 6},
		// 0.14 USD spread over the lead's hold: 0.14/0.1 h = 1.4 USD/h
		// credited beats the 0.0208 USD/h lost at 125; over 10 h it does not.
		{name: "a short spell at the lead price is ridden", price: 50, incumbents: 10, lead: LeadPrice{USDPerMWh: 125, HoldHours: 0.1, OK: true}, wantMining: 10},
		{name: "a long spell at the lead price is left", price: 50, incumbents: 10, lead: LeadPrice{USDPerMWh: 125, HoldHours: 10, OK: true}, wantMining: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := dispatchASIC("asics", 10)
			spec.SwitchCostUSD = 0.14
			in := &DispatchInput{
				Fleets:         []switchd.FleetSpec{spec},
				Values:         dispatchValues(tt.price),
				Constraints:    openConstraints(1e6, 1),
				Current:        [][switchd.NumModes]int{{10 - tt.incumbents, tt.incumbents, 0}},
				HoldHours:      [][switchd.NumModes]float64{{0, 2, 0}},
				IncumbentPrice: [][switchd.NumModes]LeadPrice{{mMining: tt.lead}},
			}
			require.Equal(t, [][switchd.NumModes]int{{10 - tt.wantMining, tt.wantMining, 0}}, planCounts(Dispatch(in)))
		})
	}
}
