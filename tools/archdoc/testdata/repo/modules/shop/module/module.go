package module

func New() int { return 0 }
