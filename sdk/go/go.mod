module fairlane.dev/sdk/go

go 1.26
