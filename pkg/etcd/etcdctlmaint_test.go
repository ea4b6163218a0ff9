package etcd_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/kubectl-etcd/kubectl-etcd/pkg/discovery"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/etcd"
	"github.com/kubectl-etcd/kubectl-etcd/pkg/exec"
)

// alarmExecutor plays etcdctl's alarm verbs over a set of raised alarms
// and records the verbs run.
type alarmExecutor struct {
	raised []*pb.AlarmMember
	ran    []string
}

func (e *alarmExecutor) Exec(_ context.Context, _ exec.PodRef, cmd []string, _ io.Reader, stdout, _ io.Writer) error {
	verb := strings.Join(cmd[slices.Index(cmd, "json")+1:], " ")
	e.ran = append(e.ran, verb)
	resp := &pb.AlarmResponse{Alarms: e.raised}
	switch verb {
	case "alarm list":
	case "alarm disarm":
		e.raised = nil
	default:
		return fmt.Errorf("unexpected etcdctl %s", verb)
	}
	return json.NewEncoder(stdout).Encode(resp)
}

// TestExecAlarmDisarm: etcdctl alarm disarm clears every alarm, so over
// exec an alarm of another type than the one asked for stops it.
func TestExecAlarmDisarm(t *testing.T) {
	noSpace := &pb.AlarmMember{MemberID: 0xa2, Alarm: pb.AlarmType_NOSPACE}
	corrupt := &pb.AlarmMember{MemberID: 0xa3, Alarm: pb.AlarmType_CORRUPT}
	tests := []struct {
		name     string
		raised   []*pb.AlarmMember
		disarm   etcd.Alarm
		ran      []string
		disarmed int
		wantErr  []string
	}{
		{name: "NOSPACE alone", raised: []*pb.AlarmMember{noSpace}, disarm: etcd.Alarm{MemberID: 0xa2, Type: "NOSPACE"},
			ran: []string{"alarm list", "alarm disarm"}, disarmed: 1},
		{name: "NOSPACE on two members", raised: []*pb.AlarmMember{noSpace, {MemberID: 0xa3, Alarm: pb.AlarmType_NOSPACE}}, disarm: etcd.Alarm{MemberID: 0xa2, Type: "NOSPACE"},
			ran: []string{"alarm list", "alarm disarm"}, disarmed: 2},
		{name: "CORRUPT raised beside NOSPACE", raised: []*pb.AlarmMember{noSpace, corrupt}, disarm: etcd.Alarm{MemberID: 0xa2, Type: "NOSPACE"},
			ran: []string{"alarm list"}, wantErr: []string{"refusing to disarm NOSPACE on member a2 over exec: alarm CORRUPT is also raised on member a3", "endpoint hashkv", "--transport=port-forward"}},
		{name: "NOSPACE raised beside CORRUPT", raised: []*pb.AlarmMember{corrupt, noSpace}, disarm: etcd.Alarm{MemberID: 0xa3, Type: "CORRUPT"},
			ran: []string{"alarm list"}, wantErr: []string{"alarm NOSPACE is also raised on member a2", "check why NOSPACE is raised first"}},
		{name: "the zero alarm disarms all", raised: []*pb.AlarmMember{noSpace, corrupt},
			ran: []string{"alarm disarm"}, disarmed: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := &alarmExecutor{raised: tt.raised}
			c, err := (&etcd.ExecTransport{Exec: ex}).Client(context.Background(), discovery.Member{Name: "m1", Namespace: "kube-system", Pod: "etcd-m1", Running: true})
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.AlarmDisarm(context.Background(), tt.disarm)
			if !slices.Equal(ex.ran, tt.ran) {
				t.Errorf("ran %q, want %q", ex.ran, tt.ran)
			}
			if len(tt.wantErr) > 0 {
				for _, w := range tt.wantErr {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Errorf("error %v, want it to contain %q", err, w)
					}
				}
				if len(ex.raised) != len(tt.raised) {
					t.Errorf("%d alarms left, want all %d", len(ex.raised), len(tt.raised))
				}
				return
			}
			if err != nil || len(got) != tt.disarmed {
				t.Errorf("AlarmDisarm = %+v, %v; want %d disarmed", got, err, tt.disarmed)
			}
		})
	}
}
