// Package api is the notifications module's HTTP adapter. It depends only on the
// module's contract and the bus, so every process serves these routes — asking the
// process that runs notifications when it is not this one.
package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/modules/notifications"
)

// NotificationList is a page of notifications.
type NotificationList struct {
	Items      []notifications.Notification `json:"items"`
	NextCursor string                       `json:"next_cursor,omitempty" doc:"pass as cursor for the next page; absent on the last page"`
}

// Routes returns the notifications module's HTTP routes, answered through b.
func Routes(b *bus.Bus) httpapi.Routes {
	h := handlers{b: b}
	return func(api huma.API) {
		huma.Register(api, huma.Operation{
			OperationID: "list-notifications", Method: http.MethodGet, Path: "/v1/notifications",
			Tags: []string{"Notifications"}, Summary: "List my notifications",
			Description: "The signed-in customer's notifications (order confirmed, rejected or cancelled; refund issued), newest first, by pages. " +
				"email_status says whether each was also sent by email.",
			Security: httpapi.SignedIn, Metadata: httpapi.Problems(notifications.ErrInvalidInput),
		}, h.listNotifications)
	}
}

// handlers answers the module's operations by asking it through the bus.
type handlers struct{ b *bus.Bus }

type listIn struct {
	httpapi.Paging
}

// listNotifications answers a page of the signed-in caller's own notifications,
// newest first: whoever asks, admins included, sees only those addressed to them.
func (h handlers) listNotifications(ctx context.Context, in *listIn) (*httpapi.PageOut[NotificationList], error) {
	p, ok := httpapi.PrincipalFrom(ctx)
	if !ok {
		return nil, huma.Error401Unauthorized("sign in first")
	}
	before, err := notificationCursor.Decode(in.Cursor)
	if err != nil {
		return nil, err
	}
	page, err := bus.Call(ctx, h.b, notifications.ListNotificationsRequest, notifications.ListNotifications{
		CustomerID: p.UserID, Before: before, Limit: in.Limit})

	if err != nil {
		return nil, httpapi.Problem(err)
	}
	out := &httpapi.PageOut[NotificationList]{Body: NotificationList{Items: httpapi.NotNull(page.Items)}}
	out.Body.NextCursor, out.Link = notificationCursor.Next(page.NextBefore, "/v1/notifications", in.Limit, nil)
	return out, nil
}

var notificationCursor = httpapi.Cursor{Prefix: "n1."}
