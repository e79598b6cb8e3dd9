.state as $s | .event as $e |
if   $e.type == "AccountOpened" then
       {owner: $e.data.owner, currency: $e.data.currency, balance: 0, status: "open", transactions: 0}
elif $e.type == "Deposited"     then $s | .balance += $e.data.amount | .transactions += 1
elif $e.type == "Withdrawn"     then $s | .balance -= $e.data.amount | .transactions += 1
                                        | .last_withdrawal = $e.data.amount
elif $e.type == "FeeCharged"    then $s | .balance -= $e.data.amount | .fees = ((.fees // 0) + $e.data.amount)
elif $e.type == "InterestPaid"  then $s | .balance += $e.data.amount
elif $e.type == "AccountFrozen" then $s | .status = "frozen" | .frozen_reason = $e.data.reason
elif $e.type == "AccountUnfrozen" then $s | .status = "open" | del(.frozen_reason)
else $s end
