package conformance

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	dbplugin "github.com/hashicorp/vault/sdk/database/dbplugin/v5"
	pb "github.com/hashicorp/vault/sdk/database/dbplugin/v5/proto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	mNewUser    = "/dbplugin.v5.Database/NewUser"
	mInitialize = "/dbplugin.v5.Database/Initialize"
	mUpdateUser = "/dbplugin.v5.Database/UpdateUser"
	mType       = "/dbplugin.v5.Database/Type"
	mClose      = "/dbplugin.v5.Database/Close"
)

func marshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nestedStruct encodes a Struct nested depth levels deep by hand (the Go
// marshaller would refuse), as raw bytes: {"a": {"a": ... {}}}.
func nestedStruct(depth int) []byte {
	var inner []byte // empty Struct
	for i := 0; i < depth; i++ {
		// Value{struct_value (5): inner}
		var v []byte
		v = protowire.AppendTag(v, 5, protowire.BytesType)
		v = protowire.AppendBytes(v, inner)
		// Struct.FieldsEntry{key (1): "a", value (2): v}
		var e []byte
		e = protowire.AppendTag(e, 1, protowire.BytesType)
		e = protowire.AppendString(e, "a")
		e = protowire.AppendTag(e, 2, protowire.BytesType)
		e = protowire.AppendBytes(e, v)
		// Struct{fields (1): e}
		var s []byte
		s = protowire.AppendTag(s, 1, protowire.BytesType)
		s = protowire.AppendBytes(s, e)
		inner = s
	}
	var req []byte // InitializeRequest{config_data (1): inner}
	req = protowire.AppendTag(req, 1, protowire.BytesType)
	return protowire.AppendBytes(req, inner)
}

// Hostile input: each case gets a clear gRPC error (or a bounded success),
// the process survives, answers the next call, and its memory stays bounded.
func TestReliabilityHostileInput(t *testing.T) {
	h := newFaultHarness(t)
	ctx := testContext(t)
	db := h.openInit(ctx)
	id := db.Plugin.ID
	conn := rawConn(t, db)
	pid := db.Plugin.Process.PID()
	rss0 := rssKB(t, pid)

	validUser := func() *pb.NewUserRequest {
		return &pb.NewUserRequest{UsernameConfig: &pb.UsernameConfig{DisplayName: "d", RoleName: "r"},
			Password: secret(t, kindPassword, "Pw-"+randomString(t, 16)), Expiration: timestamppb.New(time.Now().Add(time.Hour))}
	}
	big := validUser()
	big.Password = strings.Repeat("x", 5<<20)
	badTS := validUser()
	badTS.Expiration = &timestamppb.Timestamp{Seconds: 1 << 62}
	badNanos := validUser()
	badNanos.Expiration = &timestamppb.Timestamp{Seconds: 0, Nanos: -1}
	badCred := validUser()
	badCred.CredentialType = 42
	// role_name (UsernameConfig field 2) with invalid UTF-8.
	var uc []byte
	uc = protowire.AppendTag(uc, 2, protowire.BytesType)
	uc = protowire.AppendBytes(uc, []byte{0xff, 0xfe, 'r'})
	var badUTF8 []byte
	badUTF8 = protowire.AppendTag(badUTF8, 1, protowire.BytesType)
	badUTF8 = protowire.AppendBytes(badUTF8, uc)
	// username (UpdateUserRequest field 1) with invalid UTF-8.
	var badUTF8Update []byte
	badUTF8Update = protowire.AppendTag(badUTF8Update, 1, protowire.BytesType)
	badUTF8Update = protowire.AppendBytes(badUTF8Update, []byte{'u', 0xc3, 0x28})

	giantCfg := map[string]any{}
	for i := 0; i < 100000; i++ {
		giantCfg[fmt.Sprintf("key-%06d", i)] = strings.Repeat("v", 16)
	}
	giant, err := structpb.NewStruct(giantCfg)
	if err != nil {
		t.Fatal(err)
	}
	tplCfg := func(tpl string) []byte {
		s, err := structpb.NewStruct(map[string]any{"username_template": tpl})
		if err != nil {
			t.Fatal(err)
		}
		return marshal(t, &pb.InitializeRequest{ConfigData: s})
	}

	cases := []struct {
		name, method, id string
		body             []byte
		want             []codes.Code // empty: success allowed
		okAllowed        bool
	}{
		{"garbage bytes", mNewUser, id, []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, []codes.Code{codes.Internal, codes.InvalidArgument}, false},
		{"truncated message", mNewUser, id, marshal(t, validUser())[:7], []codes.Code{codes.Internal, codes.InvalidArgument}, false},
		{"wrong wire type", mInitialize, id, []byte{0x08, 0x01, 0x0d}, []codes.Code{codes.Internal, codes.InvalidArgument}, false},
		{"5 MiB message (> 4 MiB limit)", mNewUser, id, marshal(t, big), []codes.Code{codes.ResourceExhausted, codes.OutOfRange}, false},
		{"timestamp beyond year 9999", mNewUser, id, marshal(t, badTS), []codes.Code{codes.InvalidArgument}, false},
		{"timestamp negative nanos", mNewUser, id, marshal(t, badNanos), []codes.Code{codes.InvalidArgument}, false},
		{"unknown credential type", mNewUser, id, marshal(t, badCred), []codes.Code{codes.InvalidArgument}, false},
		{"invalid UTF-8 role name", mNewUser, id, badUTF8, []codes.Code{codes.Internal, codes.InvalidArgument}, false},
		{"invalid UTF-8 username", mUpdateUser, id, badUTF8Update, []codes.Code{codes.Internal, codes.InvalidArgument}, false},
		{"config nested 5000 deep", mInitialize, "hostile-nested", nestedStruct(5000), []codes.Code{codes.Internal, codes.InvalidArgument}, false},
		{"config nested 30 deep", mInitialize, "hostile-nested30", nestedStruct(30), []codes.Code{codes.Internal}, true},
		{"config with 100k keys (~3 MB)", mInitialize, "hostile-giant", marshal(t, &pb.InitializeRequest{ConfigData: giant}), []codes.Code{codes.ResourceExhausted}, true},
		{"wrong-typed config value", mInitialize, "hostile-typed", func() []byte {
			s, _ := structpb.NewStruct(map[string]any{"sleep_ms": "soon"})
			return marshal(t, &pb.InitializeRequest{ConfigData: s})
		}(), []codes.Code{codes.InvalidArgument}, false},
		{"1 MiB username template", mInitialize, "hostile-tpl", tplCfg(strings.Repeat("{{.RoleName}}", 80000)), []codes.Code{codes.InvalidArgument}, true},
		{"template nested 20000 parens", mInitialize, "hostile-tpl2", tplCfg("{{" + strings.Repeat("(", 20000) + ".RoleName" + strings.Repeat(")", 20000) + "}}"), []codes.Code{codes.InvalidArgument}, true},
		{"unterminated template", mInitialize, "hostile-tpl3", tplCfg("{{ .RoleName "), []codes.Code{codes.InvalidArgument}, false},
		{"unknown multiplex_id", mNewUser, "no-such-id", marshal(t, validUser()), []codes.Code{codes.Unknown}, false},
		{"unknown method", "/dbplugin.v5.Database/Drop", id, nil, []codes.Code{codes.Unimplemented}, false},
	}
	for _, c := range cases {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		start := time.Now()
		_, err := rawInvoke(cctx, conn, c.id, c.method, c.body)
		cancel()
		h.watch.err(err)
		took := time.Since(start)
		code := status.Code(err)
		switch {
		case err == nil && c.okAllowed:
			t.Logf("%-32s → OK in %v", c.name, took.Round(time.Millisecond))
		case err == nil:
			t.Errorf("%s: accepted, want one of %v", c.name, c.want)
		case !containsCode(c.want, code):
			t.Errorf("%s: %v, want one of %v", c.name, err, c.want)
		case status.Convert(err).Message() == "" && code != codes.Unimplemented:
			t.Errorf("%s: error without a message", c.name)
		default:
			t.Logf("%-32s → %v: %.120s (%v)", c.name, code, status.Convert(err).Message(), took.Round(time.Millisecond))
		}
		if took > 5*time.Second {
			t.Errorf("%s: took %v", c.name, took)
		}
		mustBeAlive(t, pid)
		if _, err := rawInvoke(ctx, conn, id, mType, nil); err != nil {
			t.Fatalf("after %s the plugin does not answer Type: %v", c.name, err)
		}
	}
	// Two multiplex ids on one call.
	mctx := withMuxID(ctx, "a")
	var out []byte
	err = hygiene.err(t.Name(), mType, conn.Invoke(appendMuxID(mctx, "b"), mType, []byte{}, &out, forceRaw()))
	if status.Code(err) != codes.Unknown || !strings.Contains(err.Error(), "unexpected number of IDs") {
		t.Errorf("two multiplex ids: %v", err)
	}

	// Largest config nesting accepted (informational).
	depth := 0
	for d := 1; d <= 64; d++ {
		if _, err := rawInvoke(ctx, conn, "hostile-depth", mInitialize, nestedStruct(d)); err != nil {
			break
		}
		depth = d
	}
	t.Logf("deepest config Struct accepted: %d levels", depth)

	// Many ids at once: 2,000 instances, then closed, twice; the second round
	// must not grow memory further (a high-water mark, not a leak).
	const many = 2000
	manyRound := func(round int) (int64, int64) {
		errs := runPool(many, 32, func(i int) error {
			_, err := rawInvoke(ctx, conn, fmt.Sprintf("many-%d-%d", round, i), mType, nil)
			return err
		})
		if len(errs) > 0 {
			t.Fatalf("%d of %d Type calls on new ids failed: %v", len(errs), many, errs[0])
		}
		with := rssKB(t, pid)
		errs = runPool(many, 32, func(i int) error {
			_, err := rawInvoke(ctx, conn, fmt.Sprintf("many-%d-%d", round, i), mClose, nil)
			return err
		})
		if len(errs) > 0 {
			t.Fatalf("%d Close calls failed: %v", len(errs), errs[0])
		}
		return with, rssKB(t, pid)
	}
	with1, after1 := manyRound(1)
	with2, after2 := manyRound(2)
	t.Logf("memory: start %d kB; %d ids open %d kB, closed %d kB; again %d kB, closed %d kB", rss0, many, with1, after1, with2, after2)
	if after2 > after1+after1/10 {
		t.Errorf("VmRSS keeps growing with ids that were closed: %d kB → %d kB", after1, after2)
	}
	if after2-rss0 > 64<<10 {
		t.Errorf("VmRSS grew by %d kB over the hostile inputs", after2-rss0)
	}
	if _, _, err := h.newUser(ctx, db, "r"); err != nil {
		t.Fatalf("NewUser after the hostile inputs: %v", err)
	}
	_ = dbplugin.CredentialTypePassword
}

func containsCode(list []codes.Code, c codes.Code) bool {
	for _, x := range list {
		if x == c {
			return true
		}
	}
	return false
}
