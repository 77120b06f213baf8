module example.com/pgkms-go-adapter

go 1.19
