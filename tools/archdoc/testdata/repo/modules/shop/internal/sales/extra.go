package sales

import ev "example.com/fixture/modules/shop"

func (s *Service) publish() any { return ev.SoldEvent.With(ev.Sold{}) }
