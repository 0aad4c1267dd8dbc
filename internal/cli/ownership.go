package cli

import (
	"context"
	"flag"
	"io"
)

// OwnershipOptions are the flags of a `dualwrite ownership` command.
type OwnershipOptions struct {
	ConfigPath string
	Action     string // "show", "adopt", "drop", "reset"
	Side       string // drop --side; reset --capture
	Stream     string // reset --stream
	Out        io.Writer
}

var ownershipGroup = group{
	name:    "ownership",
	summary: "show, adopt, drop or reset what the link owns in its databases",
	desc: "The ownership commands work on the databases and the data_dir of a configuration file, with\n" +
		"no engine running on that data_dir (they take its lock). Each database records which control\n" +
		"store (data_dir) owns the link there, and every recorded position names its source; an engine\n" +
		"refuses to start on what it does not own (DW2041, DW2042, DW2043) until one of these commands\n" +
		"settles it deliberately.",
	examples: []string{
		"dualwrite ownership show --config dualwrite.yaml",
		"dualwrite ownership adopt --config dualwrite.yaml",
		"dualwrite ownership reset --config dualwrite.yaml --stream customers:crm->erp",
	},
}

func ownershipCommands() []*command {
	return []*command{
		{
			name:    "ownership show",
			summary: "show the link's owners, capture objects and positions with their sources",
			desc: "Show, per side: the side's source identity, which control store owns the link there, the\n" +
				"replication slot, publication and origins, the control store's capture position and every\n" +
				"applied position, each with its source (FOREIGN when it is not the side's current one).",
			examples: []string{"dualwrite ownership show --config dualwrite.yaml"},
			setup:    setupOwnership("show"),
		},
		{
			name:    "ownership adopt",
			summary: "make this data_dir the owner of the link on both databases",
			desc: "Make this data_dir's control store the owner of the link on both databases, keeping the\n" +
				"link's replication slot, publication and origins at their positions, and stamping positions\n" +
				"recorded without a source (by an earlier version) with the side's current source. Stop the\n" +
				"engine that owned the link first: two engines on one link take each other's changes.",
			examples: []string{"dualwrite ownership adopt --config dualwrite.yaml"},
			setup:    setupOwnership("adopt"),
		},
		{
			name:    "ownership drop",
			summary: "drop a side's slot, publication and origins and forget its position",
			desc: "Drop the link's replication slot, publication and origins on one side, forget the side's\n" +
				"capture position and make this data_dir the owner of the link there. Changes made since the\n" +
				"old position are no longer captured: run the side's maps again with initial sync.",
			examples: []string{"dualwrite ownership drop --config dualwrite.yaml --side erp"},
			setup:    setupOwnership("drop"),
		},
		{
			name:    "ownership reset",
			summary: "forget a stream's applied position, or a side's capture position",
			desc: "Forget a position that belongs to another source (DW2041). --stream NAME deletes the\n" +
				"stream's applied position from the progress table of the side that records it: its next\n" +
				"batch is applied whatever its position. --capture SIDE forgets the control store's capture\n" +
				"position of the side: capture starts afresh, so resync the side's maps.",
			examples: []string{
				"dualwrite ownership reset --config dualwrite.yaml --stream customers:crm->erp",
				"dualwrite ownership reset --config dualwrite.yaml --capture crm",
			},
			setup: setupOwnership("reset"),
		},
	}
}

func setupOwnership(verb string) func(r *runner, fs *flag.FlagSet) action {
	return func(r *runner, fs *flag.FlagSet) action {
		config := fs.String("config", "", "the configuration `FILE` (required)")
		var side, stream, capture *string
		switch verb {
		case "drop":
			side = fs.String("side", "", "the `SIDE` whose capture objects to drop (required)")
		case "reset":
			stream = fs.String("stream", "", "forget this `STREAM`'s applied position")
			capture = fs.String("capture", "", "forget this `SIDE`'s capture position")
		}
		return func(ctx context.Context, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			if *config == "" {
				return usagef("--config FILE is required")
			}
			o := OwnershipOptions{ConfigPath: *config, Action: verb, Out: r.env.Stdout}
			switch verb {
			case "drop":
				if *side == "" {
					return usagef("--side SIDE is required")
				}
				o.Side = *side
			case "reset":
				if (*stream == "") == (*capture == "") {
					return usagef("give either --stream STREAM or --capture SIDE")
				}
				o.Stream, o.Side = *stream, *capture
			}
			if r.h.Ownership == nil {
				return missingHandler("ownership")
			}
			return r.h.Ownership(ctx, o)
		}
	}
}
