using System.Buffers;
using System.Buffers.Binary;

namespace LlmGateway.Storage;

/// <summary>
/// A local append-only file of records the store could not take yet (usage records, budget settlements),
/// so that what an instance owes the store survives a crash or a restart during a store outage.
/// <para>
/// Each instance writes its own file (<c>{name}.{instance}.spool</c> under <see cref="StoreOptions.SpoolPath"/>),
/// held open exclusively: on Linux and macOS .NET takes an advisory lock, so a file whose writer is alive
/// can't be opened by another instance, and one whose writer died (kill -9 included) can. At start an instance
/// adopts such orphans of the same name and hands their records to their owner to write again.
/// </para>
/// <para>
/// Records are length-prefixed (4 bytes, little-endian) and written through to the OS at once (no fsync:
/// a crashed process loses nothing the OS already has; a crashed machine may lose the last records).
/// A record cut short by a crash mid-write is skipped when read. The file is emptied when everything in it
/// is in the store; records written again after a crash are de-duplicated by their owner.
/// </para>
/// </summary>
public sealed class LocalSpool : IDisposable
{
    private const string Extension = ".spool";
    private readonly Lock _lock = new();
    private readonly FileStream _file;
    private readonly long _maxBytes;
    private readonly ILogger _logger;
    private long _dropped;
    private bool _disposed;

    private LocalSpool(string path, FileStream file, long maxBytes, ILogger logger)
    {
        Path = path;
        _file = file;
        _maxBytes = maxBytes;
        _logger = logger;
    }

    public string Path { get; }

    /// <summary>Records not written because the spool was full (<see cref="StoreOptions.SpoolMaxBytes"/>).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    public bool IsEmpty
    {
        get
        {
            lock (_lock) return _disposed || _file.Length == 0;
        }
    }

    /// <summary>Creates this instance's spool file named <paramref name="name"/> in <paramref name="directory"/>.</summary>
    public static LocalSpool Create(string directory, string name, long maxBytes, ILogger logger)
    {
        Directory.CreateDirectory(directory);
        var path = System.IO.Path.Combine(directory, $"{name}.{Environment.ProcessId}-{Guid.NewGuid():N}{Extension}");
        var file = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, bufferSize: 0, FileOptions.None);
        return new LocalSpool(path, file, maxBytes, logger);
    }

    /// <summary>
    /// The records of every spool file named <paramref name="name"/> in <paramref name="directory"/> whose writer is
    /// gone (the file can be locked), oldest file first; each file is deleted once <paramref name="take"/> has them.
    /// </summary>
    public static int AdoptOrphans(string directory, string name, string exceptPath, Action<IReadOnlyList<byte[]>> take, ILogger logger)
    {
        if (!Directory.Exists(directory)) return 0;
        var adopted = 0;
        var files = new DirectoryInfo(directory).GetFiles(name + ".*" + Extension).OrderBy(f => f.LastWriteTimeUtc);
        foreach (var info in files)
        {
            if (string.Equals(info.FullName, exceptPath, StringComparison.Ordinal)) continue;
            FileStream orphan;
            try
            {
                orphan = new FileStream(info.FullName, FileMode.Open, FileAccess.ReadWrite, FileShare.None, bufferSize: 0);
            }
            catch (IOException)
            {
                continue; // its writer is alive (another instance on this host)
            }
            catch (UnauthorizedAccessException e)
            {
                logger.LogWarning(e, "Spool file {Path} can't be read; its records are not replayed", info.FullName);
                continue;
            }
            using (orphan)
            {
                var records = ReadAll(orphan);
                take(records);
                adopted += records.Count;
            }
            File.Delete(info.FullName);
        }
        return adopted;
    }

    /// <summary>Appends records; false (and the records counted as dropped) when the spool is full or can't be written.</summary>
    public bool Append(IReadOnlyList<byte[]> records)
    {
        if (records.Count == 0) return true;
        var size = 0L;
        foreach (var r in records) size += 4 + r.Length;
        var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(size, int.MaxValue));
        try
        {
            var at = 0;
            foreach (var r in records)
            {
                BinaryPrimitives.WriteInt32LittleEndian(buffer.AsSpan(at), r.Length);
                r.CopyTo(buffer, at + 4);
                at += 4 + r.Length;
            }
            lock (_lock)
            {
                if (_disposed)
                {
                    Drop(records.Count, "closed: the gateway is stopping");
                    return false;
                }
                if (_file.Length + size > _maxBytes)
                {
                    Drop(records.Count, "full");
                    return false;
                }
                _file.Seek(0, SeekOrigin.End);
                _file.Write(buffer, 0, at);
                _file.Flush();
            }
            return true;
        }
        catch (IOException e)
        {
            Drop(records.Count, e.Message);
            return false;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void Drop(int count, string why)
    {
        if (Interlocked.Add(ref _dropped, count) - count == 0 || Dropped % 1000 < count)
        {
            _logger.LogError("Spool {Path} can't take more records ({Why}): {Dropped} dropped so far", Path, why, Dropped);
        }
    }

    /// <summary>Every record in this instance's spool, oldest first.</summary>
    public IReadOnlyList<byte[]> ReadAll()
    {
        lock (_lock) return _disposed ? [] : ReadAll(_file);
    }

    /// <summary>Empties the spool: everything in it is in the store.</summary>
    public void Clear()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _file.SetLength(0);
            _file.Flush();
        }
    }

    private static List<byte[]> ReadAll(FileStream file)
    {
        var records = new List<byte[]>();
        file.Seek(0, SeekOrigin.Begin);
        Span<byte> prefix = stackalloc byte[4];
        while (true)
        {
            if (file.ReadAtLeast(prefix, 4, throwOnEndOfStream: false) < 4) break;
            var length = BinaryPrimitives.ReadInt32LittleEndian(prefix);
            if (length < 0 || length > file.Length - file.Position) break; // cut short by a crash mid-write
            var record = new byte[length];
            file.ReadExactly(record);
            records.Add(record);
        }
        file.Seek(0, SeekOrigin.End);
        return records;
    }

    public void Dispose()
    {
        lock (_lock)
        {
            // The host may stop its services more than once.
            if (_disposed) return;
            _disposed = true;
            var empty = _file.Length == 0;
            _file.Dispose();
            // An empty spool is not worth leaving behind; a non-empty one is replayed by the next instance.
            if (empty) File.Delete(Path);
        }
    }
}
