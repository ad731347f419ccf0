module fairlane.dev/loadtest/sender

go 1.26
